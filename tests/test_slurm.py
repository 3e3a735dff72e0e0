"""The grid on a real (local, one-node) Slurm: submitted as an array, signalled, requeued, resumed.

The session fixture starts a private cluster with scripts/dev/local_slurm.sh (munged, slurmctld,
slurmd; needs root and `apt-get install -y slurm-wlm munge`) and skips these tests when Slurm is
not installed. Every command has a timeout; on one, the cluster's jobs are cancelled and the job
logs shown.
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lossd.engine.checkpoint import load_checkpoint
from lossd.results import read_record
from tests.tiny import grid_command, same_to_the_last_digit

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "dev" / "local_slurm.sh"
RUN_NAME = Path("synthetic_grid", "synthetic", "unetformer")

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _missing() -> str | None:
    """Why the local cluster cannot run here, or None."""
    for tool in ("munged", "slurmctld", "slurmd", "sbatch"):
        if not (shutil.which(tool) or Path("/usr/sbin", tool).exists()):
            return f"'{tool}' is not installed (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the local Slurm cluster needs root (slurmd)"
    return None


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running one-node cluster; the environment that points Slurm commands and lossd at it."""
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "LOSSD_SLURM_DIR": str(state)}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180
    )
    assert started.returncode == 0, f"local Slurm did not start:\n{started.stderr[-3000:]}"
    yield {
        "SLURM_CONF": str(state / "slurm.conf"),
        "LOSSD_SLURM_PARTITION": "debug",
        "LOSSD_SLURM_GPUS": "0",
        "LOSSD_SLURM_CPUS": "1",
        "LOSSD_SLURM_MEM_GB": "1",
        "LOSSD_SLURM_TIME_MIN": "30",
    }
    subprocess.run(
        ["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120
    )


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Slurm variables of an enclosing job would confuse submitit's job environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(extra or {})}


def _logs(sweep: Path, tail: int = 2000) -> str:
    """The submitit job logs (stdout and stderr of every job), each cut to its last ``tail``."""
    logs = sorted((sweep / ".submitit").glob("*/*_log.*"))
    return "\n".join(f"--- {p.name}\n{p.read_text()[-tail:]}" for p in logs)


def _finish(proc: subprocess.Popen, sweep: Path, slurm: dict[str, str], timeout: float) -> str:
    """Wait for a launch; on timeout cancel the cluster's jobs and fail with their logs."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        _cancel_all(slurm)
        pytest.fail(f"launch still running after {timeout:.0f} s\n{out[-3000:]}\n{_logs(sweep)}")
    assert proc.returncode == 0, f"{out[-3000:]}\n{_logs(sweep)}"
    return out


def _cancel_all(slurm: dict[str, str]) -> None:
    env = _env(slurm)
    jobs = subprocess.run(["squeue", "-h", "-o", "%A"], env=env, capture_output=True, text=True)
    if jobs.stdout.split():
        subprocess.run(["scancel", *jobs.stdout.split()], env=env, timeout=60)


@pytest.fixture
def launch(local_slurm: dict[str, str]) -> Iterator:
    """Start a command; whatever still runs when the test ends is killed, its jobs cancelled."""
    started: list[subprocess.Popen] = []

    def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started.append(proc)
        return proc

    yield start
    running = [proc for proc in started if proc.poll() is None]
    for proc in running:
        proc.kill()
        proc.communicate()
    if running:
        _cancel_all(local_slurm)


def _record(results: Path, loss: str) -> dict:
    return read_record(results / RUN_NAME / loss / "seed0" / "metrics.json")


def test_the_grid_runs_as_a_job_array_with_the_numbers_of_the_basic_launcher(
    local_slurm: dict[str, str], launch, tmp_path: Path, synthetic_root: Path
) -> None:
    cells = ("loss=base,lossd", "trainer.max_epochs=2")
    sweep = tmp_path / "slurm_out"
    started = time.monotonic()
    slurm = launch(
        grid_command(sweep, tmp_path / "slurm", synthetic_root, *cells, "hydra/launcher=slurm"),
        _env(local_slurm),
    )
    out = _finish(slurm, sweep, local_slurm, timeout=170)
    print(f"slurm grid of 2 cells: {time.monotonic() - started:.1f} s")
    basic = launch(
        grid_command(tmp_path / "basic_out", tmp_path / "basic", synthetic_root, *cells), _env()
    )
    _finish(basic, tmp_path / "basic_out", local_slurm, timeout=300)

    jobs = sorted(
        p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_\d", p.name)
    )
    assert len(jobs) == 2 and jobs[0].split("_")[0] == jobs[1].split("_")[0], jobs  # one array
    assert all(list((sweep / ".submitit" / job).glob("*_result.pkl")) for job in jobs)
    assert "Submitit 'slurm' sweep output dir" in out
    for loss in ("base", "lossd"):
        record, reference = _record(tmp_path / "slurm", loss), _record(tmp_path / "basic", loss)
        assert (record["status"], record["loss"], record["steps"]) == ("completed", loss, 4)
        assert same_to_the_last_digit(record["metrics"], reference["metrics"]), loss
        assert same_to_the_last_digit(record["history"], reference["history"]), loss


def test_a_signalled_cell_checkpoints_is_requeued_and_resumes_to_the_same_numbers(
    local_slurm: dict[str, str], launch, tmp_path: Path, synthetic_root: Path
) -> None:
    # 6 epochs of 4 steps; last.ckpt every 2 steps shows progress, then the job gets SIGUSR1.
    cell = (
        "loss=base",
        "dataset.batch_size=2",
        "trainer.max_epochs=6",
        "trainer.checkpoint_every_n_steps=2",
    )
    sweep = tmp_path / "slurm_out"
    started = time.monotonic()
    slurm = launch(
        grid_command(sweep, tmp_path / "slurm", synthetic_root, *cell, "hydra/launcher=slurm"),
        _env(local_slurm),
    )
    # The uninterrupted reference, meanwhile, with the basic launcher (the other core).
    basic = launch(
        grid_command(tmp_path / "basic_out", tmp_path / "basic", synthetic_root, *cell), _env()
    )
    last = sweep / RUN_NAME / "base" / "seed0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and slurm.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert last.exists(), f"no checkpoint after 120 s\n{_logs(sweep)}"
    # One cell: submitit submits a plain job (not an array), its folder named by its id.
    job = next(p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit())
    signalled = time.monotonic()
    subprocess.run(["scancel", "--signal=USR1", job], env=_env(local_slurm), check=True)

    _finish(slurm, sweep, local_slurm, timeout=170)
    print(
        f"signalled cell: {time.monotonic() - started:.1f} s in all, requeue and resume "
        f"{time.monotonic() - signalled:.1f} s"
    )
    _finish(basic, tmp_path / "basic_out", local_slurm, timeout=120)

    record, reference = _record(tmp_path / "slurm", "base"), _record(tmp_path / "basic", "base")
    assert record["status"] == "completed" and record["steps"] == reference["steps"] == 24
    assert same_to_the_last_digit(record["metrics"], reference["metrics"])
    assert same_to_the_last_digit(record["history"], reference["history"])
    # The restart is on record in the checkpoint: signal, step, the Slurm job and its requeue.
    state = load_checkpoint(last)["trainer"]
    assert state["requeues"] == 1 and len(state["restarts"]) == 1, state["restarts"]
    restart = state["restarts"][0]
    print(f"restart: {restart}")
    assert restart["signal"] == "SIGUSR1" and restart["lost_s"] == 0.0
    assert 2 <= restart["step"] < 24
    assert (restart["slurm_job"], restart["slurm_restart_count"]) == (job, 1)
    log = _logs(sweep, tail=10**6)
    assert "stopped by SIGUSR1 at step" in log and f"Requeued job {job}" in log
