"""The README's promises about the environment stay true, and the package installs lean.

Issue 22: ``pip install lossd`` needs torch and numpy only; the training stack, the
integration libraries and the dev tools are extras with ranges; requirements.lock pins the
exact environment that the Makefile and environment.yml install.
"""

import re
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import lossd
from lossd.losses import DistanceLoss, HausdorffDTLoss

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TRAINING_STACK = ("hydra", "wandb", "rasterio", "albumentations", "pandas", "omegaconf", "timm")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        found += [Requirement(r) for r in extra]
    return [r for r in found if canonicalize_name(r.name) != "lossd"]


def test_the_package_itself_needs_only_torch_and_numpy():
    assert sorted(Requirement(r).name for r in PROJECT["dependencies"]) == ["numpy", "torch"]
    extras = PROJECT["optional-dependencies"]
    assert {"train", "integrations", "dev", "speedups"} <= set(extras)
    assert "lossd[train,integrations]" in extras["dev"]  # make test's .[dev] installs them all
    assert any(r.startswith("build") for r in extras["dev"])


def test_every_requirement_is_a_range_not_a_pin():
    for requirement in _requirements():
        assert "==" not in str(requirement.specifier), requirement


def test_lock_pins_every_requirement_within_its_range():
    pins = _lock()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_lock_is_the_installed_environment():
    # make test installs the lock (Makefile, -c requirements.lock): every pin is what runs here.
    for name, version in _lock().items():
        assert metadata.version(name) == version, name


def test_makefile_and_environment_yml_install_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, flags=re.MULTILINE)
    assert stamp_rule and {"pyproject.toml", "requirements.lock"} <= set(stamp_rule[1].split())
    assert '-c requirements.lock -e ".[dev]"' in makefile
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-r requirements.lock"]
    assert "python=3.11" in env["dependencies"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, flags=re.MULTILINE)
    assert commands == ["make train", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_version_has_one_source():
    assert lossd.__version__ == PROJECT["version"] == metadata.version("lossd")
    source = (ROOT / "src" / "lossd" / "__init__.py").read_text()
    assert PROJECT["version"] not in source, "the version is pyproject's, not a second copy"


def test_changelog_names_the_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog")
    assert "keepachangelog.com" in changelog
    assert f"## [{PROJECT['version']}]" in changelog


def test_citation_metadata_cites_the_paper_and_the_repository():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == PROJECT["version"]
    assert citation["license"] == "MIT"
    paper = citation["preferred-citation"]
    assert paper["doi"] == "10.7527/S1000-6893.2025.32780"
    assert [a["family-names"] for a in paper["authors"]] == ["Ma", "Ren", "Li", "Chen"]
    assert paper["journal"] == "Acta Aeronautica et Astronautica Sinica"
    assert (paper["volume"], paper["issue"], paper["year"]) == (47, 8, 2026)
    assert "LICENSE" in PROJECT["license-files"] and (ROOT / "LICENSE").is_file()


# --- the built wheel and sdist, and the wheel alone in a fresh venv ---------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("lossd-*.whl")
    (sdist,) = out.glob("lossd-*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_wheel_holds_the_losses_and_py_typed_and_the_sdist_the_licence(built):
    wheel, sdist = built
    assert wheel.name.startswith(f"lossd-{PROJECT['version']}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"lossd/py.typed", "lossd/losses/__init__.py", "lossd/losses/distance.py"} <= names
    assert "lossd/losses/functional.py" in names and "lossd/ops/distance.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    requires = [
        line
        for line in zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("METADATA")))
        .decode()
        .splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert sorted(r.split()[1] for r in requires) == ["numpy>=1.24", "torch>=2.4"]
    with tarfile.open(sdist) as archive:
        members = {Path(m).relative_to(Path(m).parts[0]).as_posix() for m in archive.getnames()}
    assert {"LICENSE", "pyproject.toml", "src/lossd/losses/distance.py"} <= members


def _distribution_closure(*names: str) -> list[metadata.Distribution]:
    """The installed distributions of ``names`` and, recursively, their requirements.

    A requirement's extras count (torch needs ``cuda-toolkit[cublas, ...]``, whose extras
    name the nvidia-* libraries): the closure pip itself would install.
    """
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(name) for name in names]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in done:
            continue
        done.add(key)
        dist = seen.setdefault(name, metadata.distribution(name))
        for line in dist.requires or []:
            sub = Requirement(line)
            extras = ["", *requirement.extras]
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return list(seen.values())


def _link_distributions(dists: list[metadata.Distribution], target: Path) -> None:
    """Symlink the top-level files and folders (and .dist-info) of ``dists`` into ``target``."""
    target.mkdir()
    for dist in dists:
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            link = target / top
            if not link.exists() and (base / top).exists():
                link.symlink_to(base / top)


LEAN_SCRIPT = """
import json, sys, torch
import lossd, lossd.losses
from lossd.losses import DistanceLoss, HausdorffDTLoss
stack = {stack!r}
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set(stack))
g = torch.Generator().manual_seed(0)
logits = torch.randn(2, 3, 16, 16, generator=g)
target = torch.randint(0, 3, (2, 16, 16), generator=g)
print(json.dumps({{
    "loaded": loaded, "version": lossd.__version__, "file": lossd.__file__,
    "lossd": float(DistanceLoss(3)(logits, target)),
    "hd_dt": float(HausdorffDTLoss()(logits, target)),
    "accelerators": sorted({{m.split('.')[0] for m in sys.modules}} & {{'cv2', 'scipy'}}),
}}))
"""


@pytest.mark.slow
def test_the_wheel_alone_in_a_fresh_venv_imports_no_training_stack(built, tmp_path):
    """Install the built wheel into a fresh venv that sees only torch and numpy.

    Method (fast and clean): ``python -m venv`` creates an empty venv; torch==2.14.1 is not
    reinstalled (its CUDA build is about 5 GB) but made visible through one ``.pth`` file onto a
    folder of symlinks to exactly the installed distributions of torch and numpy and their own
    declared requirements (the closure pip would install for them; nothing of lossd's
    extras). The wheel is then installed by this environment's pip into that venv
    (``pip --python <venv> install --no-index``): pip must find every
    requirement of the wheel already satisfied, so a wheel that needed anything beyond torch
    and numpy fails to install here. A child interpreter of that venv imports lossd.losses,
    lists the training-stack modules loaded, and computes Lossd and HD-DT (which, without
    OpenCV and scipy there, takes its torch fallback) on fixed tensors.
    """
    wheel, _ = built
    shim = tmp_path / "torch_only"
    _link_distributions(_distribution_closure("torch", "numpy"), shim)
    assert not (shim / "scipy").exists() and not (shim / "lossd").exists()
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)  # no pip, no setuptools of its own
    python = env / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "torch_only.pth").write_text(f"{shim}\n")
    subprocess.run(  # this environment's pip, installing into the fresh venv
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
         str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    result = subprocess.run(
        [python, "-c", LEAN_SCRIPT.format(stack=TRAINING_STACK)],
        check=True, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    report = yaml.safe_load(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["accelerators"] == []
    assert report["version"] == PROJECT["version"]
    assert str(env) in report["file"]  # the wheel, not this checkout
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 16, 16, generator=generator)
    target = torch.randint(0, 3, (2, 16, 16), generator=generator)
    assert report["lossd"] == float(DistanceLoss(3)(logits, target))  # the engine's loss
    assert report["hd_dt"] == pytest.approx(float(HausdorffDTLoss()(logits, target)), rel=1e-6)
