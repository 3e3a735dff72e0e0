"""Prediction on user images: PNG/JPEG files and GeoTIFF rasters of any size.

What ``scripts/predict.py`` calls. For every input:

- GeoTIFF (``.tif``/``.tiff``) -> ``<out>/<stem>.tif``: single-band uint8 class indices with the
  input's CRS, transform and size (and a colour table of the dataset's palette), plus
  ``<stem>_colour.png`` and ``<stem>_overlay.png``. The raster is read and written in bands of
  rows with rasterio windows: each window-row of the sliding window is read, predicted and
  blended, and the rows no later window touches are written at once
  (:func:`lossd.engine.inference.stream_logits`), so memory holds one window-row of logits,
  never the ``C x H x W`` logits of the raster.
- PNG/JPEG -> ``<out>/<stem>.png`` (uint8 class indices) plus the colour and overlay PNGs.

Images are normalised as in training (mean/std of the checkpoint's evaluation transform) and
must have the bands the network takes (3); ``bands`` picks them from a raster with more (e.g.
``(1, 2, 3)`` of an RGBIR tile). Outputs are written to a temporary file and renamed; an
existing output is an error unless ``overwrite``.
"""

import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.windows import Window
from torch import nn
from tqdm import tqdm

from lossd.data.info import DatasetInfo
from lossd.data.prepare import parse_patch_name
from lossd.data.registry import get_info
from lossd.data.submission import SubmissionSummary, SubmissionWriter, source_key
from lossd.engine.inference import InferenceOptions, WindowGrid, stream_logits
from lossd.engine.inference_model import InferenceModel
from lossd.errors import (
    CheckpointError,
    DataFormatError,
    DatasetNotFoundError,
    InvalidOptionError,
    OutputExistsError,
)
from lossd.io import TIFF_SUFFIXES, atomic_path, read_image, write_image, write_mask
from lossd.io.colours import colorize, overlay
from lossd.io.raster import (
    GDAL_CACHE_MB,
    class_raster_profile,
    image_header,
    open_raster,
    read_rows,
)

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "Format",
    "Predictor",
    "find_inputs",
    "output_paths",
    "predict_paths",
    "predict_submission",
]

Format = Literal["indices", "colour", "overlay"]
FORMATS: tuple[str, ...] = ("indices", "colour", "overlay")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", *TIFF_SUFFIXES)

_RENDER_ROWS = 512
"""Rows per block when colour and overlay PNGs of a raster are assembled."""
_OVERLAY_ALPHA = 0.5


def find_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``paths``: files as given, folders searched recursively.

    Raises:
        DatasetNotFoundError: If a path does not exist, or a folder holds no image.
        InvalidOptionError: If a file is not PNG/JPEG/TIFF.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                raise DatasetNotFoundError(
                    f"no image in folder '{path}' (searched for {', '.join(IMAGE_SUFFIXES)})"
                )
            found += images
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise InvalidOptionError(
                    f"'{path}' is not an image this tool reads; expected one of "
                    f"{', '.join(IMAGE_SUFFIXES)}"
                )
            found.append(path)
        else:
            raise DatasetNotFoundError(f"input '{path}' not found")
    return found


def output_paths(source: Path, out_dir: Path, formats: Sequence[str]) -> dict[str, Path]:
    """The files written for ``source``: ``{format: path}``.

    ``indices``: ``<stem>.tif`` for a GeoTIFF, else ``<stem>.png``; ``colour``:
    ``<stem>_colour.png``; ``overlay``: ``<stem>_overlay.png``.
    """
    is_tiff = source.suffix.lower() in TIFF_SUFFIXES
    names = {
        "indices": f"{source.stem}.tif" if is_tiff else f"{source.stem}.png",
        "colour": f"{source.stem}_colour.png",
        "overlay": f"{source.stem}_overlay.png",
    }
    return {fmt: out_dir / names[fmt] for fmt in FORMATS if fmt in formats}


@dataclass
class Predictor:
    """User images and rasters in, class maps and pictures out, through an inference model.

    Args:
        inference: The network with its normalisation, precision, TTA and windows.
        info: The dataset the network was trained on (classes and palette).
        bands: 1-based bands to read from each input (None: all, which must be as many as the
            network takes).
        progress: Show progress bars.
    """

    inference: InferenceModel
    info: DatasetInfo
    bands: tuple[int, ...] | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.in_channels = self.inference.in_channels
        if self.bands is not None and (
            len(self.bands) != self.in_channels or any(b < 1 for b in self.bands)
        ):
            raise InvalidOptionError(
                f"bands={list(self.bands)}; expected {self.in_channels} band numbers, "
                "counted from 1, e.g. 1,2,3"
            )

    @property
    def model(self) -> nn.Module:
        """The network."""
        return self.inference.model

    @property
    def options(self) -> InferenceOptions:
        """Tiling, blending and TTA."""
        return self.inference.options

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self.inference.device

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        options: InferenceOptions,
        device: str = "auto",
        *,
        bands: Sequence[int] | None = None,
        precision: str = "32",
        expect_model: str | None = None,
        expect_num_classes: int | None = None,
        progress: bool = True,
    ) -> "Predictor":
        """Rebuild the network of a training checkpoint (see :class:`InferenceModel`).

        Raises:
            CheckpointError: If the checkpoint is unreadable, or holds another model or number
                of classes than expected.
            InvalidOptionError: For a bad device, precision or band list.
        """
        inference = InferenceModel.from_checkpoint(
            checkpoint,
            options,
            device,
            precision=precision,
            expect_model=expect_model,
            expect_num_classes=expect_num_classes,
        )
        assert inference.meta is not None  # built from a checkpoint
        return cls(
            inference=inference,
            info=get_info(inference.meta.dataset),
            bands=None if bands is None else tuple(int(b) for b in bands),
            progress=progress,
        )

    # ------------------------------------------------------------------ checks
    def check_input(self, path: Path) -> None:
        """Check that ``path`` is readable, 8-bit, and has the bands the network takes.

        Raises:
            DataFormatError: Naming the file, what it has and what is expected.
        """
        count, dtype = image_header(path)
        if dtype != "uint8":
            raise DataFormatError(
                f"'{path}' holds {dtype} values; expected 8-bit (uint8) images like the "
                "training data: rescale it to 0..255 first"
            )
        if self.bands is None and count != self.in_channels:
            raise DataFormatError(
                f"'{path}' has {count} band(s); the network takes {self.in_channels} (its "
                f"checkpoint's config). Choose {self.in_channels} of them with --bands, e.g. "
                f"--bands {','.join(str(b) for b in range(1, self.in_channels + 1))}"
            )
        if self.bands is not None and max(self.bands) > count:
            raise DataFormatError(
                f"'{path}' has {count} band(s); bands={list(self.bands)} asks for band "
                f"{max(self.bands)}"
            )

    # ------------------------------------------------------------------ core
    @torch.inference_mode()
    def predict_bands(
        self,
        read_rows: Callable[[int, int], np.ndarray],
        height: int,
        width: int,
        desc: str = "predict",
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Class indices of an image given by a row reader, band of rows by band of rows.

        Args:
            read_rows: ``(start, stop) -> uint8 [C, stop - start, width]``.
            height: Image height.
            width: Image width.
            desc: Progress bar label.

        Yields:
            ``(start_row, indices)`` with indices uint8 [rows, width], top to bottom.

        Raises:
            InvalidOptionError: With ``pad`` other than ``none``, which needs the whole image.
        """
        if self.options.pad != "none":
            raise InvalidOptionError(
                f"pad={self.options.pad!r} tiles the whole padded image; it applies to images "
                "held in memory (PNG/JPEG), not to rasters read window by window: use pad=none "
                "with patch_size/overlap for GeoTIFFs"
            )
        grid = WindowGrid.build(height, width, self.options.patch_size, self.options.overlap)
        with tqdm(
            total=len(grid), desc=desc, unit="win", disable=not self.progress, leave=False
        ) as bar:
            for top, logits in stream_logits(
                self.inference.forward,
                lambda start, stop: self.inference.normalize(read_rows(start, stop)),
                grid,
                batch_size=self.options.batch_size,
                blend=self.options.blend,
                on_window_row=bar.update,
            ):
                yield top, logits[0].argmax(0).to(torch.uint8).cpu().numpy()

    def predict_array(self, image: np.ndarray, desc: str = "predict") -> np.ndarray:
        """Class indices (uint8 H×W) of an H×W×C uint8 image held in memory."""
        if image.ndim != 3 or image.shape[2] != self.in_channels or image.dtype != np.uint8:
            raise DataFormatError(
                f"image has shape {image.shape} and dtype {image.dtype}; expected "
                f"H×W×{self.in_channels} uint8"
            )
        chw = np.moveaxis(image, -1, 0)
        if self.options.pad != "none":  # GeoSeg's tiling of the padded image, held whole
            logits = self.inference.logits(self.inference.normalize(chw))
            return logits[0].argmax(0).to(torch.uint8).cpu().numpy()
        out = np.empty(image.shape[:2], np.uint8)
        for top, rows in self.predict_bands(
            lambda a, b: chw[:, a:b], image.shape[0], image.shape[1], desc
        ):
            out[top : top + rows.shape[0]] = rows
        return out

    def read_file(self, path: Path) -> np.ndarray:
        """An input image as H×W×C uint8 with the network's bands (after :meth:`check_input`)."""
        self.check_input(path)
        image = read_image(path)
        if self.bands is not None:
            image = image[:, :, [b - 1 for b in self.bands]]
        return np.ascontiguousarray(image)

    def predict_file(self, path: Path) -> np.ndarray:
        """Class indices (uint8 H×W) of one image file, held in memory (any format)."""
        return self.predict_array(self.read_file(path), desc=path.name)

    # ------------------------------------------------------------------ rasters
    def _indexes(self, src: DatasetReader) -> list[int]:
        return list(self.bands) if self.bands is not None else list(range(1, src.count + 1))

    def predict_raster(self, src_path: Path, dst_path: Path) -> None:
        """Predict a GeoTIFF window by window into a single-band uint8 GeoTIFF.

        The output has the input's size, CRS and transform, a colour table of the dataset's
        palette, and is written to a temporary file that is renamed when complete.

        Raises:
            DataFormatError: If the raster is unreadable, not 8-bit or has the wrong bands.
        """
        self.check_input(src_path)
        with ExitStack() as stack:
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
            src = stack.enter_context(open_raster(src_path))
            indexes = self._indexes(src)
            profile = class_raster_profile(src)

            def read_band_rows(start: int, stop: int) -> np.ndarray:
                return read_rows(src, indexes, start, stop, src_path)

            tmp = stack.enter_context(atomic_path(dst_path))
            if "transform" not in profile:  # a plain TIFF in, a plain TIFF out: no warning
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write_colormap(
                    1, {i: (*colour, 255) for i, colour in enumerate(self.info.palette)}
                )
                for top, rows in self.predict_bands(
                    read_band_rows, src.height, src.width, src_path.name
                ):
                    dst.write(rows, 1, window=Window(0, top, src.width, rows.shape[0]))

    def _render_raster(self, src_path: Path, classes: Path, out: Path, mode: str) -> None:
        """Colour or overlay PNG of a predicted raster, assembled in blocks of rows."""
        with ExitStack() as stack:
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
            pred = stack.enter_context(open_raster(classes))
            src = stack.enter_context(open_raster(src_path)) if mode == "overlay" else None
            picture = np.empty((pred.height, pred.width, 3), np.uint8)
            for top in range(0, pred.height, _RENDER_ROWS):
                window = Window(0, top, pred.width, min(_RENDER_ROWS, pred.height - top))
                indices = pred.read(1, window=window)
                if src is None:
                    block = colorize(indices, self.info.palette)
                else:
                    image = np.moveaxis(src.read(self._indexes(src)[:3], window=window), 0, -1)
                    if image.shape[2] < 3:
                        image = np.repeat(image[:, :, :1], 3, axis=2)
                    block = overlay(image, indices, self.info.palette, _OVERLAY_ALPHA)
                picture[top : top + block.shape[0]] = block
        write_image(out, picture)

    # ------------------------------------------------------------------ files
    def predict_to(self, source: Path, outputs: dict[str, Path]) -> None:
        """Predict one input and write the requested outputs (see :func:`output_paths`)."""
        if source.suffix.lower() in TIFF_SUFFIXES:
            classes = outputs.get("indices")
            with ExitStack() as stack:
                if classes is None:  # only the pictures asked for: a temporary class raster
                    folder = next(iter(outputs.values())).parent
                    folder.mkdir(parents=True, exist_ok=True)
                    scratch = stack.enter_context(
                        tempfile.TemporaryDirectory(prefix=".lossd-predict-", dir=folder)
                    )
                    classes = Path(scratch) / f"{source.stem}.tif"
                self.predict_raster(source, classes)
                for mode in ("colour", "overlay"):
                    if mode in outputs:
                        self._render_raster(source, classes, outputs[mode], mode)
            return
        image = self.read_file(source)
        indices = self.predict_array(image, desc=source.name)
        if "indices" in outputs:
            write_mask(outputs["indices"], indices)
        if "colour" in outputs:
            write_image(outputs["colour"], colorize(indices, self.info.palette))
        if "overlay" in outputs:
            write_image(
                outputs["overlay"],
                overlay(image[:, :, :3], indices, self.info.palette, _OVERLAY_ALPHA),
            )


def _plan(
    inputs: Sequence[Path], out_dir: Path, formats: Sequence[str], overwrite: bool
) -> list[tuple[Path, dict[str, Path]]]:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InvalidOptionError(f"format {unknown or []}; expected some of {list(FORMATS)}")
    plan = [(source, output_paths(source, out_dir, formats)) for source in inputs]
    owners: dict[Path, Path] = {}
    sources = {source.resolve() for source in inputs}
    for source, outputs in plan:
        for path in outputs.values():
            if path.resolve() in sources:
                raise InvalidOptionError(
                    f"output '{path}' would replace the input image itself; choose another --out"
                )
            if path in owners:
                raise InvalidOptionError(
                    f"'{owners[path]}' and '{source}' would both write '{path}' (same file "
                    "stem); predict them into different --out folders"
                )
            owners[path] = source
    if not overwrite:
        existing = [path for _, outputs in plan for path in outputs.values() if path.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise OutputExistsError(
                f"output '{existing[0]}' exists{more}; pass --overwrite to replace, or choose "
                "another --out"
            )
    return plan


def predict_paths(
    predictor: Predictor,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    overwrite: bool = False,
) -> list[Path]:
    """Predict every input image and write the requested outputs into ``out_dir``.

    Every input and output is checked before the first prediction: missing or unreadable
    inputs, wrong band counts or dtypes, two inputs writing one file, and existing outputs
    (unless ``overwrite``) are errors.

    Args:
        predictor: The network and its settings.
        inputs: Image files and folders (searched recursively).
        out_dir: Output folder (created).
        formats: Any of ``indices``, ``colour``, ``overlay``.
        overwrite: Replace existing outputs.

    Returns:
        The files written.

    Raises:
        DatasetNotFoundError: If an input does not exist.
        DataFormatError: If an input is unreadable, not 8-bit, or has the wrong bands.
        InvalidOptionError: For an unknown format or colliding outputs.
        OutputExistsError: If an output exists and ``overwrite`` is False.
    """
    plan = _plan(find_inputs(inputs), Path(out_dir), formats, overwrite)
    for source, _ in plan:
        predictor.check_input(source)
    written: list[Path] = []
    for source, outputs in tqdm(plan, desc="images", unit="img", disable=not predictor.progress):
        predictor.predict_to(source, outputs)
        written += outputs.values()
    return written


def predict_submission(
    predictor: Predictor,
    inputs: Sequence[str | Path],
    dataset: str,
    path: str | Path,
    overwrite: bool = False,
) -> SubmissionSummary:
    """Predict test images and pack them as a LoveDA or UAVid submission zip.

    Inputs are raw test images (LoveDA ``Test/*/images_png/<id>.png``, UAVid
    ``uavid_test/seqN/Images/<frame>.png``), predicted whole by sliding window, or prepared test
    patches, stitched back into their frames (:mod:`lossd.data.submission`).

    Args:
        predictor: The network; it must have the dataset's number of classes.
        inputs: Image files and folders (searched recursively).
        dataset: ``loveda`` or ``uavid``.
        path: The zip to write.
        overwrite: Replace an existing zip.

    Returns:
        What the archive holds (:meth:`SubmissionSummary.describe` says whether it is complete).

    Raises:
        CheckpointError: If the network has another number of classes than the dataset.
        DataFormatError: For unreadable inputs or names outside the dataset's layout.
        OutputExistsError: If the zip exists and ``overwrite`` is False.
    """
    info = get_info(dataset)
    if predictor.info.num_classes != info.num_classes:
        raise CheckpointError(
            f"the checkpoint predicts {predictor.info.num_classes} classes "
            f"({predictor.info.name}); a {dataset} submission needs {info.num_classes}"
        )
    files = find_inputs(inputs)

    def order(path: Path) -> tuple[str, int, int]:
        key = source_key(dataset, path)
        try:
            _, row, col = parse_patch_name(path.stem)
        except InvalidOptionError:
            row = col = 0
        return key, row, col

    files.sort(key=order)
    with SubmissionWriter(dataset, path, overwrite) as writer:
        for source in files:
            predictor.check_input(source)
        for source in tqdm(
            files, desc=f"{dataset} test", unit="img", disable=not predictor.progress
        ):
            writer.add(source, predictor.predict_file(source))
    return writer.summary
