"""The ablation grids: experiment files, launchers, a tiny multirun end to end, skip_done."""

import itertools
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lossd.results import read_record
from tests.tiny import grid_command

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
GRIDS = {"paper": 72, "losses": 21, "synthetic_grid": 24}


def _compose(*overrides: str, hydra_node: bool = False):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=hydra_node)
    finally:
        GlobalHydra.instance().clear()


def _cells(experiment: str) -> list[list[str]]:
    params = _compose(f"experiment={experiment}", hydra_node=True).hydra.sweeper.params
    axes = [[f"{key}={v}" for v in str(values).split(",")] for key, values in params.items()]
    return [list(cell) for cell in itertools.product(*axes)]


@pytest.mark.parametrize(("experiment", "count"), GRIDS.items())
def test_grid_sweeps_the_expected_cells(experiment: str, count: int) -> None:
    cells = _cells(experiment)
    assert len(cells) == count
    keys = [tuple(c.split("=")[0] for c in cell) for cell in cells]
    assert set(keys) == {("dataset", "model", "loss", "seed")}
    assert len({tuple(cell) for cell in cells}) == count


def _recipe(dataset: str, model: str):
    """conf/recipe/<dataset>_<model>.yaml merged over the recipe its defaults list names."""
    cfg = OmegaConf.load(CONF / "recipe" / f"{dataset}_{model}.yaml")
    parents = [p for p in cfg.pop("defaults", []) if p != "_self_"]
    return OmegaConf.merge(*(OmegaConf.load(CONF / "recipe" / f"{p}.yaml") for p in parents), cfg)


def test_paper_grid_cells_carry_their_dataset_and_model_recipes() -> None:
    models = ("unetformer", "abcnet", "fcn", "sfanet")
    for dataset, model in itertools.product(("loveda", "uavid", "potsdam"), models):
        cfg = _compose(
            "experiment=paper",
            f"dataset={dataset}",
            f"model={model}",
            "loss=lossd",
            hydra_node=True,
        )
        # the cell's recipe is chosen by `optional recipe: ${dataset}_${model}` (conf/train.yaml)
        assert cfg.hydra.runtime.choices.recipe == f"{dataset}_{model}"
        recipe = _recipe(dataset, model)
        model_yaml = OmegaConf.load(CONF / "model" / f"{model}.yaml")
        assert cfg.dataset.batch_size == recipe.dataset.batch_size
        assert cfg.dataset.crop_size == recipe.dataset.crop_size
        assert cfg.trainer.max_epochs == recipe.dataset.max_epochs
        assert cfg.model.lr == recipe.model.lr and cfg.model.backbone_lr == recipe.model.backbone_lr
        assert cfg.model.aux_weights == model_yaml.aux_weights  # the model's own head recipe
        # the paper grid trains with the originals' protocol and the authors' Lossd
        assert cfg.protocol == "original" and cfg.loss.ignore_mode == "authors"
        assert cfg.dataset.train.split == recipe.protocols.original.train_split
        assert cfg.run_name == f"paper/{dataset}/{model}/lossd/seed0"
        # the record and the Hydra folder derive from one name (lossd.records.RunIdentity)
        assert cfg.paths.results_dir == "./results/runs"
        assert cfg.experiment_name == "paper"


def test_synthetic_grid_settings() -> None:
    cfg = _compose("experiment=synthetic_grid", "model=fcn")
    assert (cfg.dataset.tile_size, cfg.dataset.num_train, cfg.dataset.num_val) == (128, 80, 24)
    assert (cfg.dataset.batch_size, cfg.trainer.max_epochs) == (8, 5)
    assert cfg.dataset.root == "./data/synthetic_grid"
    assert cfg.paths.results_dir == "./results/runs"
    assert cfg.metrics.diagnostics is True
    assert cfg.logger._target_ == "lossd.engine.loggers.NullLogger"
    assert cfg.run_name == "synthetic_grid/synthetic/fcn/lossd/seed0"
    losses = _compose("experiment=losses")
    assert losses.run_name.startswith("losses/")


def test_lambda_study_names_one_loss_per_weight_on_the_synthetic_grid_data() -> None:
    params = _compose("experiment=synthetic_lambda", hydra_node=True).hydra.sweeper.params
    assert str(params["loss.lambda_d"]).split(",") == ["10", "30"]
    grid = _compose("experiment=synthetic_grid", "model=unetformer", "loss=lossd")
    for weight in (10, 30):
        cfg = _compose("experiment=synthetic_lambda", f"loss.lambda_d={weight}")
        # a loss column per weight, records apart from the grid's, the grid's data and schedule
        assert cfg.loss.name == f"lossd_x{weight}"
        assert cfg.loss.objective.extra_weight == weight
        assert cfg.run_name == f"synthetic_lambda/synthetic/unetformer/lossd_x{weight}/seed0"
        assert cfg.dataset == grid.dataset and cfg.trainer == grid.trainer


def test_launcher_configs_take_environment_and_command_line_values(monkeypatch) -> None:
    monkeypatch.setenv("LOSSD_SLURM_PARTITION", "gpu-a100")
    monkeypatch.setenv("LOSSD_SLURM_TIME_MIN", "90")
    monkeypatch.delenv("LOSSD_SLURM_ACCOUNT", raising=False)
    cfg = _compose(
        "experiment=paper", "hydra/launcher=slurm", "hydra.launcher.mem_gb=32", hydra_node=True
    )
    slurm = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (
        slurm["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert (slurm["partition"], slurm["timeout_min"], slurm["mem_gb"]) == ("gpu-a100", 90, 32)
    assert (slurm["gpus_per_node"], slurm["cpus_per_task"], slurm["account"]) == (1, 8, None)
    assert slurm["max_num_timeout"] == 3 and slurm["submitit_folder"] == "./outputs/.submitit/%j"
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.params["partition"] == "gpu-a100"

    local = _compose("experiment=synthetic_grid", "hydra/launcher=local", hydra_node=True)
    launcher = instantiate(local.hydra.launcher)
    assert type(launcher).__name__ == "LocalLauncher"
    assert launcher.params["gpus_per_node"] == 0 and launcher.params["timeout_min"] == 1440


# --- the real entry point -----------------------------------------------------------------


def _train(tmp_path: Path, synthetic_root: Path, *overrides: str, env: dict | None = None):
    """``python scripts/train.py -m experiment=synthetic_grid`` shrunk to one step per cell."""
    cmd = grid_command(
        tmp_path / "out",
        tmp_path / "results",
        synthetic_root,
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        *overrides,
    )
    full_env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)


def _record_path(tmp_path: Path, loss: str, seed: int = 0) -> Path:
    cell = Path("synthetic_grid", "synthetic", "unetformer", loss, f"seed{seed}", "metrics.json")
    return tmp_path / "results" / cell


@pytest.mark.slow
def test_basic_launcher_grid_keeps_finished_cells_and_skip_done_finishes_it(
    tmp_path: Path, synthetic_root: Path
) -> None:
    # A grid whose cells (base, 4), (base, 0), (lossd, 4), (lossd, 0) fail at batch size 0: the
    # grid goes on after a failed cell, finished records are kept, the exit status says it failed.
    failed = _train(tmp_path, synthetic_root, "loss=base,lossd", "dataset.batch_size=4,0")
    assert failed.returncode != 0
    assert "dataset.batch_size=0" in failed.stderr + failed.stdout
    base = _record_path(tmp_path, "base")
    assert read_record(base)["status"] == "completed"
    assert read_record(_record_path(tmp_path, "lossd"))["status"] == "completed"
    stamp = base.stat().st_mtime_ns
    _record_path(tmp_path, "lossd").unlink()  # as if the grid had been interrupted there

    # Re-launched with skip_done=true: the finished cell is skipped, the missing one trained.
    finish = _train(tmp_path, synthetic_root, "loss=base,lossd", "skip_done=true")
    assert finish.returncode == 0, finish.stderr[-3000:]
    assert base.stat().st_mtime_ns == stamp
    lossd = read_record(_record_path(tmp_path, "lossd"))
    assert (lossd["loss"], lossd["experiment"], lossd["status"]) == (
        "lossd",
        "synthetic_grid",
        "completed",
    )
    assert lossd["steps"] == 1 and "fp_distance_hist" in lossd["metrics"]
    cell_dir = tmp_path / "out" / "synthetic_grid" / "synthetic" / "unetformer" / "lossd" / "seed0"
    assert (cell_dir / "metrics.json").is_file() and (cell_dir / ".hydra" / "config.yaml").is_file()

    # Once more: nothing retrains.
    stamps = {p: p.stat().st_mtime_ns for p in (base, _record_path(tmp_path, "lossd"))}
    again = _train(tmp_path, synthetic_root, "loss=base,lossd", "skip_done=true")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again.stdout.count("skip_done:") == 2

    # The tables of the grid, through the CLI: one row, each value the record's test mF1 in
    # percent (the protocol's checkpoint on the test split), the split named.
    tables = tmp_path / "tables"
    make_tables = runpy.run_path(str(ROOT / "scripts" / "make_tables.py"), run_name="make_tables")
    make_tables["main"](
        ["--runs", str(tmp_path / "results" / "synthetic_grid"), "--out", str(tables)]
    )
    rows = [line for line in (tables / "main.md").read_text().splitlines() if "| Synthetic" in line]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    base_f1 = 100 * read_record(base)["test"]["metrics"]["mF1"]
    lossd_f1 = 100 * lossd["test"]["metrics"]["mF1"]
    assert cells[:8] == [
        "Synthetic",
        "UNetFormer",
        "mF1",
        "test",
        "heldout",
        f"{base_f1:.2f}",
        f"{lossd_f1:.2f}",
        f"{round(lossd_f1 - base_f1, 2) + 0.0:+.2f}",
    ]
    # the records' per-image counts give the paired interval: one seed, so images only
    delta = f"{round(lossd_f1 - base_f1, 2) + 0.0:+.2f}"
    assert cells[8].startswith(f"{delta} [") and cells[8].rstrip(" *").endswith("]")
    assert cells[9:] == ["1/1", "—", "—", "—"]


@pytest.mark.slow
def test_submitit_local_launcher_runs_each_cell_in_its_own_process(
    tmp_path: Path, synthetic_root: Path
) -> None:
    done = _train(
        tmp_path,
        synthetic_root,
        "loss=base,lossd",
        "hydra/launcher=local",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for loss in ("base", "lossd"):
        record = read_record(_record_path(tmp_path, loss))
        assert (record["loss"], record["status"]) == (loss, "completed")
    jobs = [p for p in (tmp_path / "out" / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2
    assert all(list(job.glob("*_result.pkl")) for job in jobs)


@pytest.mark.slow
def test_slurm_launcher_submits_one_array_with_the_configured_resources(
    tmp_path: Path, synthetic_root: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Fake Slurm: srun exists; sbatch keeps the submission script and refuses the job.
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\ncp "$1" "$SBATCH_COPY"\necho "sbatch: error: test" >&2\nexit 1\n'
    )
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    script = tmp_path / "submitted.sh"
    done = _train(
        tmp_path,
        synthetic_root,
        "loss=base,lossd",
        "hydra/launcher=slurm",
        "hydra.launcher.mem_gb=32",
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "SBATCH_COPY": str(script),
            "LOSSD_SLURM_PARTITION": "gpu-a100",
            "LOSSD_SLURM_TIME_MIN": "90",
        },
    )
    assert done.returncode != 0 and "sbatch: error: test" in done.stderr
    lines = script.read_text().splitlines()
    for expected in (
        "#SBATCH --array=0-1%2",
        "#SBATCH --partition=gpu-a100",
        "#SBATCH --time=90",
        "#SBATCH --mem=32GB",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --job-name=lossd",
        "#SBATCH --signal=USR2@120",
    ):
        assert expected in lines, expected
    assert any(line.startswith("srun ") and sys.executable in line for line in lines)
    assert not (tmp_path / "results").exists()  # nothing ran
