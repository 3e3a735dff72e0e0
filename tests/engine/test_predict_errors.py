"""Bad prediction inputs (lossd.engine.predict, scripts/predict.py) fail with a named message."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioError

from lossd.engine.inference import WindowGrid
from lossd.engine.inference_model import InferenceModel
from lossd.engine.predict import Predictor, predict_paths
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError
from lossd.io import write_image
from tests.engine.test_evaluate import make_checkpoint
from tests.engine.test_predict import OPTIONS, ROOT, _geotiff

SUFFIXES = ".png, .jpg, .jpeg, .tif, .tiff"
CLI_ENV = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    return make_checkpoint(folder / "best.ckpt", folder)


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", progress=False)


def _png(path: Path, height: int = 20, width: int = 24) -> Path:
    rng = np.random.default_rng(1)
    write_image(path, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return path


def _nothing_in(folder: Path) -> bool:
    """No output (nor a hidden temporary) was left in ``folder``."""
    return not folder.exists() or not any(folder.rglob("*"))


@dataclasses.dataclass(frozen=True)
class CliRun:
    """A finished ``scripts/predict.py`` run: its exit code, stderr and output folder."""

    returncode: int
    stderr: str
    out: Path


CLI_CASES = {
    "patch-size": ["--patch-size", "64", "48", "32"],
    "bands": ["--bands", "1,2,x"],
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliRun]:
    """``scripts/predict.py`` with each bad option of CLI_CASES, run side by side.

    Each run spends most of its time importing lossd, so they are started together. The
    checkpoint does not exist: both options must be refused before it is opened.
    """
    folder = tmp_path_factory.mktemp("cli")
    source = _png(folder / "photo.png")
    started: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for name, options in CLI_CASES.items():
        out = folder / f"out-{name}"
        command = [
            sys.executable,
            str(ROOT / "scripts" / "predict.py"),
            str(source),
            "--checkpoint",
            str(folder / "never-read.ckpt"),
            "--out",
            str(out),
            *options,
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CLI_ENV,
            cwd=ROOT,
        )
        started[name] = (process, out)
    runs: dict[str, CliRun] = {}
    try:
        for name, (process, out) in started.items():
            _, stderr = process.communicate(timeout=180)
            runs[name] = CliRun(process.returncode, stderr, out)
    finally:  # a run that hung (or a failed wait) leaves no process behind
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return runs


def test_folder_without_images_is_named(tmp_path: Path, predictor: Predictor) -> None:
    folder = tmp_path / "photos"
    (folder / "empty_sub").mkdir(parents=True)
    (folder / "readme.txt").write_text("no pictures here")
    (folder / "scan.bmp").write_bytes(b"BM")
    expected = f"no image in folder '{folder}' (searched for {SUFFIXES})"
    with pytest.raises(DatasetNotFoundError, match=f"^{re.escape(expected)}$"):
        predict_paths(predictor, [folder], tmp_path / "out")
    assert _nothing_in(tmp_path / "out")


def test_file_with_unsupported_suffix_is_named(tmp_path: Path, predictor: Predictor) -> None:
    source = tmp_path / "scan.bmp"
    source.write_bytes(b"BM")
    expected = f"'{source}' is not an image this tool reads; expected one of {SUFFIXES}"
    with pytest.raises(InvalidOptionError, match=f"^{re.escape(expected)}$"):
        predict_paths(predictor, [_png(tmp_path / "ok.png"), source], tmp_path / "out")
    assert _nothing_in(tmp_path / "out")


def test_two_inputs_with_one_stem_are_refused(tmp_path: Path, predictor: Predictor) -> None:
    first = _png(tmp_path / "in" / "north" / "tile.png")
    second = _png(tmp_path / "in" / "south" / "tile.png")
    out = tmp_path / "out"
    expected = (
        f"'{first}' and '{second}' would both write '{out / 'tile.png'}' (same file stem); "
        "predict them into different --out folders"
    )
    with pytest.raises(InvalidOptionError, match=f"^{re.escape(expected)}$"):
        predict_paths(predictor, [tmp_path / "in"], out)
    # a PNG and a GeoTIFF of one stem write different index files but the same colour PNG
    _geotiff(tmp_path / "tile.tif", 20, 24)
    with pytest.raises(InvalidOptionError, match=re.escape(f"'{out / 'tile_colour.png'}'")):
        predict_paths(predictor, [first, tmp_path / "tile.tif"], out, ["indices", "colour"])
    assert _nothing_in(out)


def test_bands_beyond_the_file_are_named(
    tmp_path: Path, checkpoint: Path, predictor: Predictor
) -> None:
    source = tmp_path / "rgb.tif"
    _geotiff(source, 30, 40, bands=3)
    picked = Predictor.from_checkpoint(checkpoint, OPTIONS, "cpu", bands=[1, 2, 4], progress=False)
    expected = f"'{source}' has 3 band(s); bands=[1, 2, 4] asks for band 4"
    with pytest.raises(DataFormatError, match=f"^{re.escape(expected)}$"):
        predict_paths(picked, [source], tmp_path / "out")
    png = _png(tmp_path / "photo.png")
    expected = f"'{png}' has 3 band(s); bands=[1, 2, 4] asks for band 4"
    with pytest.raises(DataFormatError, match=f"^{re.escape(expected)}$"):
        predict_paths(dataclasses.replace(predictor, bands=(1, 2, 4)), [png], tmp_path / "out")
    assert _nothing_in(tmp_path / "out")


@pytest.mark.parametrize("keep_strips", [0, 1], ids=["after-header", "mid-raster"])
def test_truncated_geotiff_names_the_rows_and_leaves_no_output(
    tmp_path: Path, predictor: Predictor, keep_strips: int
) -> None:
    source = tmp_path / "tile.tif"
    height, width = 96, 64
    _geotiff(source, height, width)
    with rasterio.open(source) as src:
        strip_rows = src.block_shapes[0][0]
        offset = src.get_tag_item(f"BLOCK_OFFSET_0_{keep_strips}", "TIFF", bidx=1)
    assert strip_rows * 2 < height  # at least three strips: truncation leaves a part unreadable
    with open(source, "r+b") as file:  # header (and `keep_strips` strips) intact, pixels cut
        file.truncate(int(offset) + 10)
    grid = WindowGrid.build(height, width, OPTIONS.patch_size, OPTIONS.overlap)
    window = grid.window[0]
    start = next(row for row in grid.rows if row + window > keep_strips * strip_rows)
    expected = f"cannot read rows {start}..{start + window} of '{source}' (truncated or corrupt?): "
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=f"^{re.escape(expected)}.+") as caught:
        predict_paths(predictor, [source], out)
    assert isinstance(caught.value.__cause__, RasterioError)
    assert _nothing_in(out)  # neither the class GeoTIFF, nor its temporary, nor the PNGs
    with pytest.raises(DataFormatError, match=re.escape(expected)):
        predict_paths(predictor, [source], out, ["colour"])  # the scratch class raster too
    assert _nothing_in(out)


def test_unknown_or_no_format_is_refused(tmp_path: Path, predictor: Predictor) -> None:
    source = _png(tmp_path / "photo.png")
    allowed = "expected some of ['indices', 'colour', 'overlay']"
    for formats, named in ((["indices", "geotiff", "all"], "['all', 'geotiff']"), ([], "[]")):
        expected = f"format {named}; {allowed}"
        with pytest.raises(InvalidOptionError, match=f"^{re.escape(expected)}$"):
            predict_paths(predictor, [source], tmp_path / "out", formats)
    assert _nothing_in(tmp_path / "out")


def test_normalisation_for_another_band_count(predictor: Predictor) -> None:
    expected = "normalisation has 4 means and 4 stds for a network taking 3 bands"
    with pytest.raises(InvalidOptionError, match=f"^{re.escape(expected)}$"):
        dataclasses.replace(predictor.inference, mean=(0.5,) * 4, std=(0.25,) * 4)
    expected = "normalisation has 3 means and 1 stds for a network taking 3 bands"
    with pytest.raises(InvalidOptionError, match=f"^{re.escape(expected)}$"):
        InferenceModel(
            model=predictor.model,
            mean=(0.5, 0.5, 0.5),
            std=(0.25,),
            options=OPTIONS,
            device=predictor.device,
        )


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((20, 24, 4), np.uint8), ((20, 24), np.uint8), ((20, 24, 3), np.float32)],
    ids=["four-bands", "grey", "float32"],
)
def test_predict_array_with_wrong_shape_or_dtype(
    predictor: Predictor, shape: tuple[int, ...], dtype: type
) -> None:
    image: np.ndarray = np.zeros(shape, dtype)
    expected = f"image has shape {shape} and dtype {np.dtype(dtype)}; expected H×W×3 uint8"
    with pytest.raises(DataFormatError, match=f"^{re.escape(expected)}$"):
        predictor.predict_array(image)


def test_cli_patch_size_with_three_numbers(cli_runs: dict[str, CliRun]) -> None:
    done = cli_runs["patch-size"]
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --patch-size [64, 48, 32]: expected N or H W"
    )
    assert "Traceback" not in done.stderr
    assert _nothing_in(done.out)


def test_cli_unparsable_bands(cli_runs: dict[str, CliRun]) -> None:
    done = cli_runs["bands"]
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "predict.py: error: argument --bands: --bands '1,2,x': expected e.g. 1,2,3"
    )
    assert _nothing_in(done.out)
