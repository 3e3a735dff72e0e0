"""Mutation testing of the core: mutmut over each core module, against that module's own tests.

Examples:
    python scripts/mutate.py                          # every core module (make mutate)
    python scripts/mutate.py --modules metrics/confusion.py metrics/boundary.py
    python scripts/mutate.py --time-box 300 --jobs 2
    python scripts/mutation_report.py                 # the summary -> docs/testing.md

For each module of :data:`CORE` it lays out a work folder ``mutants/<module>/`` (links to
``src``, ``tests`` and ``conf``, and a ``pyproject.toml`` whose ``[tool.mutmut]`` is the
repository's with ``only_mutate`` and ``pytest_add_cli_args_test_selection`` narrowed to that
module and its tests), runs ``mutmut run`` there (restricted to the module's functions in
scope, e.g. only ``decode``/``encode`` of a dataset module) for at most ``--time-box`` seconds,
then writes the counts per module and the diff of every surviving mutant to
``mutants/summary.json``. Mutants left unchecked when the time box ends are counted as such:
rerun that module with a longer box. See docs/testing.md, "Mutation testing".
"""

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "mutants"
SUMMARY = WORK / "summary.json"
MUTMUT = Path(sys.executable).with_name("mutmut")
LINKED = ("src", "tests", "conf", "scripts")


@dataclass(frozen=True)
class Module:
    """One core module: its source, its own tests and the functions in scope (all if empty).

    ``deselect`` names tests of those files that cannot see a mutant (they run the code in a
    subprocess, which imports the unmutated package) and only cost time.
    """

    source: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    deselect: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``metrics/confusion.py`` for ``src/lossd/metrics/confusion.py``."""
        return self.source.removeprefix("src/lossd/")

    @property
    def dotted(self) -> str:
        """``lossd.metrics.confusion``, the prefix of the module's mutant names."""
        return self.source.removeprefix("src/").removesuffix(".py").replace("/", ".")

    @property
    def patterns(self) -> tuple[str, ...]:
        """The mutant-name patterns of the functions in scope (empty: every function)."""
        return tuple(f"{self.dotted}.x_{name}__mutmut_*" for name in self.functions)


_CODEC = ("decode", "encode")
CORE: tuple[Module, ...] = (
    Module(
        "src/lossd/losses/distance.py",
        ("tests/losses/test_distance.py", "tests/losses/test_lossd_ablations.py"),
        deselect=("tests/losses/test_lossd_ablations.py::test_train_cli_prints_the_ablation",),
    ),
    Module("src/lossd/ops/distance.py", ("tests/losses/test_distance_transform.py",)),
    Module("src/lossd/metrics/confusion.py", ("tests/metrics/test_confusion.py",)),
    Module("src/lossd/metrics/boundary.py", ("tests/metrics/test_boundary.py",)),
    Module("src/lossd/metrics/bfscore.py", ("tests/metrics/test_bfscore.py",)),
    Module("src/lossd/metrics/per_image.py", ("tests/metrics/test_per_image.py",)),
    Module("src/lossd/metrics/catalogue.py", ("tests/metrics/test_catalogue.py",)),
    Module("src/lossd/metrics/segmentation.py", ("tests/metrics/test_segmentation.py",)),
    Module(
        "src/lossd/data/_labels.py",
        ("tests/data/test_labels.py", "tests/data/test_prepare_common.py"),
    ),
    # each dataset module's label codec only (paths, not names: tests/test_owners.py)
    Module("src/lossd/data/loveda.py", ("tests/data/test_loveda.py",), _CODEC),
    Module("src/lossd/data/uavid.py", ("tests/data/test_uavid.py",), _CODEC),
    Module("src/lossd/data/potsdam.py", ("tests/data/test_potsdam.py",), _CODEC),
    Module("src/lossd/data/vaihingen.py", ("tests/data/test_vaihingen.py",), _CODEC),
    Module("src/lossd/results/paired.py", ("tests/results/test_paired.py",)),
    Module("src/lossd/losses/objective.py", ("tests/losses/test_objective.py",)),
    Module("src/lossd/engine/optim.py", ("tests/engine/test_optim.py",)),
)
"""The modules behind the project's central claims (issue 24), each with its own tests."""

# mutmut's exit codes (mutmut.stats.status_by_exit_code), grouped as docs/testing.md counts them
_KILLED = {1, 3}
_SURVIVED = {0}
_TIMEOUT = {36, -24, 24, 152, 255}
_NO_TESTS = {5, 33}
_SKIPPED = {34, 37}


def _toml_value(value: object) -> str:
    """A TOML literal of a string, number, bool or list of them (json spells them alike)."""
    return json.dumps(value, ensure_ascii=False)


def _work_pyproject(module: Module) -> str:
    """The repository's pyproject.toml with ``[tool.mutmut]`` narrowed to ``module``."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config = dict(tomllib.loads(text)["tool"]["mutmut"])
    config["only_mutate"] = [module.source]
    deselected = [arg for test in module.deselect for arg in ("--deselect", test)]
    config["pytest_add_cli_args_test_selection"] = [*module.tests, *deselected]
    # drop the repository's table (up to the next table header) and append the narrowed one
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    lines = [f"{key} = {_toml_value(value)}" for key, value in config.items()]
    return text.rstrip("\n") + "\n\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def _prepare(module: Module) -> Path:
    """A fresh work folder for ``module`` (old results removed) with links and config."""
    folder = WORK / module.key.replace("/", "__").removesuffix(".py")
    if folder.exists():
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    (folder / "pyproject.toml").write_text(_work_pyproject(module), encoding="utf-8")
    return folder


def in_scope(module: Module) -> list[str]:
    """Names of the module's mutants in scope, as mutmut generates them."""
    from mutmut.mutation.file_mutation import mutate_file_contents

    source = (ROOT / module.source).read_text(encoding="utf-8")
    names = mutate_file_contents(module.source, source).mutant_names
    full = [f"{module.dotted}.{name}" for name in names]
    return [n for n in full if not module.patterns or any(fnmatch(n, p) for p in module.patterns)]


def sample(names: list[str], size: int) -> list[str]:
    """``size`` of ``names`` (all if fewer), the first by SHA-256 of the name.

    Deterministic: the same names give the same sample, in whatever order they come, and a
    mutant's place in the order depends on its name only (not on line numbers elsewhere).
    """
    if size <= 0 or len(names) <= size:
        return sorted(names)
    digest = {name: hashlib.sha256(name.encode()).hexdigest() for name in names}
    return sorted(sorted(names, key=digest.__getitem__)[:size])


def _run_mutmut(
    folder: Path, names: list[str], time_box: float, jobs: int
) -> tuple[float, bool, str | None]:
    """Run mutmut in ``folder`` for at most ``time_box`` seconds.

    Returns:
        ``(seconds, boxed out, error)``: the error is the log's tail when mutmut failed.
    """
    command = [str(MUTMUT), "run", "--max-children", str(jobs), *names]
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, "1")
    start = time.monotonic()
    with (folder / "mutmut.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            process.wait(timeout=time_box)
            boxed = False
        except subprocess.TimeoutExpired:
            boxed = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    error = None
    if not boxed and process.returncode != 0:
        tail = (folder / "mutmut.log").read_text(errors="replace")[-2000:]
        error = f"mutmut exited with {process.returncode}: ...{tail}"
    return time.monotonic() - start, boxed, error


def _results(folder: Path, module: Module, names: list[str]) -> dict[str, int | None]:
    """Exit code (None: not checked) of each mutant of ``names``."""
    meta = folder / "mutants" / (module.source + ".meta")
    codes: dict[str, int | None] = {}
    if meta.is_file():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: codes.get(name) for name in sorted(names)}


def _diff(folder: Path, name: str) -> str:
    """The unified diff of mutant ``name`` (``mutmut show``), without its header line."""
    shown = subprocess.run(
        [str(MUTMUT), "show", name], cwd=folder, capture_output=True, text=True, check=False
    )
    lines = [line for line in shown.stdout.splitlines() if not line.startswith("# ")]
    return "\n".join(lines).strip()


def mutate(module: Module, time_box: float, jobs: int, size: int) -> dict[str, object]:
    """Run ``module``'s mutants (a sample of ``size`` if > 0); counts, survivors, time."""
    folder = _prepare(module)
    scope = in_scope(module)
    names = sample(scope, size)
    seconds, boxed, error = _run_mutmut(folder, names, time_box, jobs)
    codes = _results(folder, module, names)

    def count(group: set[int]) -> int:
        return sum(code in group for code in codes.values())

    survivors = [name for name, code in codes.items() if code in _SURVIVED]
    return {
        "module": module.key,
        "source": module.source,
        "tests": list(module.tests),
        "functions": list(module.functions),
        "in_scope": len(scope),
        "mutants": len(codes),
        "killed": count(_KILLED),
        "survived": len(survivors),
        "timeout": count(_TIMEOUT),
        "no_tests": count(_NO_TESTS),
        "skipped": count(_SKIPPED),
        "not_checked": sum(code is None for code in codes.values()),
        "other": sum(
            code is not None and code not in _KILLED | _SURVIVED | _TIMEOUT | _NO_TESTS | _SKIPPED
            for code in codes.values()
        ),
        "seconds": round(seconds, 1),
        "time_boxed": boxed,
        "error": error,
        "survivors": {name: _diff(folder, name) for name in survivors},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules", nargs="+", metavar="KEY",
        help="modules to run, e.g. metrics/confusion.py (default: every core module)",
    )  # fmt: skip
    parser.add_argument(
        "--time-box", type=float, default=900.0, help="seconds per module (default 900)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument(
        "--sample", type=int, default=150, metavar="N",
        help="run N mutants per module, a deterministic sample (default 150; 0: all)",
    )  # fmt: skip
    parser.add_argument("--summary", type=Path, default=SUMMARY, help="the JSON summary")
    parser.add_argument("--list", action="store_true", help="list the core modules and exit")
    args = parser.parse_args(argv)

    by_key = {module.key: module for module in CORE}
    if args.list:
        for module in CORE:
            print(module.key, " ".join(module.tests), " ".join(module.functions))
        return
    unknown = sorted(set(args.modules or ()) - set(by_key))
    if unknown:
        raise SystemExit(f"error: unknown modules {unknown}; expected some of {sorted(by_key)}")

    summary: dict[str, dict[str, object]] = {}
    if args.summary.is_file():  # keep the other modules' results when rerunning a few
        summary = {row["module"]: row for row in json.loads(args.summary.read_text())["modules"]}
    for key in args.modules or list(by_key):
        print(f"mutating {key} (tests: {' '.join(by_key[key].tests)})", flush=True)
        row = mutate(by_key[key], args.time_box, args.jobs, args.sample)
        summary[key] = row
        boxed = " (time box reached)" if row["time_boxed"] else ""
        print(
            f"  {row['mutants']} of {row['in_scope']} mutants: {row['killed']} killed, "
            f"{row['survived']} survived, {row['timeout']} timeout, {row['no_tests']} without "
            f"tests, {row['not_checked']} not checked, in {row['seconds']} s{boxed}",
            flush=True,
        )
        if row["error"]:
            print(f"  error: {row['error']}", flush=True)
        ordered = [summary[m.key] for m in CORE if m.key in summary]
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps({"tool": _tool_version(), "modules": ordered}, indent=2))
    print(f"summary: {args.summary}")


def _tool_version() -> str:
    shown = subprocess.run([str(MUTMUT), "--version"], capture_output=True, text=True, check=False)
    return shown.stdout.strip() or "mutmut"


if __name__ == "__main__":
    main()
