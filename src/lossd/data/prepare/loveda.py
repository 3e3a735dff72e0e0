"""LoveDA: from the unpacked Zenodo download to the prepared layout.

Raw layout (docs/datasets.md §1): ``{Train,Val,Test}/{Urban,Rural}/images_png/<id>.png`` and,
for Train and Val, ``masks_png/<id>.png``. Output: ``<dst>/{train,val,test}/images/<id>_0_0.png``
(hard links to the raw images when they are kept whole, else patches) and, for train and val,
``masks/<id>_0_0.png`` with indices 0..6 and 255 for no-data (:func:`lossd.data.loveda.decode`).
Ids are unique across the dataset, so Urban and Rural share one folder per split; each
source's scene stays visible in its file name in ``meta.json``.
"""

from collections.abc import Sequence
from pathlib import Path

from lossd.data import loveda
from lossd.data._labels import UnknownPolicy, check_unknown_policy
from lossd.data.prepare._frames import FrameJob, process_frame
from lossd.data.prepare._grid import patch_options
from lossd.data.prepare._runner import (
    SplitPlan,
    SplitSummary,
    check_splits,
    find_dir,
    make_header,
    run_plans,
)
from lossd.errors import DataFormatError, DatasetNotFoundError, InvalidOptionError

__all__ = ["DEFAULT_PATCH_SIZE", "SPLITS", "prepare", "prepare_loveda"]

SPLITS: tuple[str, ...] = tuple(loveda.SPLIT_FOLDERS)
DEFAULT_PATCH_SIZE: int | None = None
"""The 1024² images are kept whole (GeoSeg trains on them whole: docs/datasets.md §1)."""


def _layout_error(src: Path, missing: list[str]) -> DatasetNotFoundError:
    expected = ", ".join(
        f"{folder}/{{Urban,Rural}}/{loveda.IMAGE_DIR}/*.png"
        + (f" and {loveda.MASK_DIR}/*.png" if split in loveda.LABELLED_SPLITS else "")
        for split, folder in loveda.SPLIT_FOLDERS.items()
    )
    return DatasetNotFoundError(
        f"'{src}' does not look like the LoveDA download: missing {', '.join(missing)}. "
        f"Expected {expected}. Download Train.zip, Val.zip and Test.zip from "
        f"{loveda.DOWNLOAD_URL} and unzip them into '{src}' (or pass --splits with the "
        "splits you have)"
    )


def _pairs(src: Path, split: str) -> list[tuple[str, Path, Path | None]]:
    """``(id, image, mask or None)`` for every image of a split, sorted by id."""
    folder = loveda.SPLIT_FOLDERS[split]
    root = find_dir(src, folder)
    if root is None:
        raise _layout_error(src, [f"{folder}/"])
    labelled = split in loveda.LABELLED_SPLITS
    missing: list[str] = []
    pairs: dict[str, tuple[str, Path, Path | None]] = {}
    for scene in loveda.SCENES:
        image_dir, mask_dir = root / scene / loveda.IMAGE_DIR, root / scene / loveda.MASK_DIR
        images = sorted(image_dir.glob("*.png"))
        if not images:
            missing.append(f"{folder}/{scene}/{loveda.IMAGE_DIR}/*.png")
        if labelled and not mask_dir.is_dir():
            missing.append(f"{folder}/{scene}/{loveda.MASK_DIR}/")
        if missing:
            continue
        masks = {p.name: p for p in mask_dir.glob("*.png")} if labelled else {}
        if labelled and set(masks) != {p.name for p in images}:
            unpaired = sorted({p.name for p in images} ^ set(masks))
            raise DataFormatError(
                f"images and masks of '{root / scene}' do not pair up by name: "
                f"{unpaired[:5]} ({len(unpaired)} unpaired); each image_png/<id>.png needs "
                f"a masks_png/<id>.png"
            )
        for image in images:
            if image.stem in pairs:
                raise DataFormatError(
                    f"image id {image.stem} appears twice: '{pairs[image.stem][1]}' and "
                    f"'{image}'; LoveDA ids are unique across scenes"
                )
            pairs[image.stem] = (image.stem, image, masks.get(image.name))
    if missing:
        raise _layout_error(src, missing)
    return sorted(pairs.values(), key=lambda p: (len(p[0]), p[0]))


def prepare_loveda(
    src: str | Path,
    dst: str | Path,
    *,
    splits: Sequence[str] = SPLITS,
    patch_size: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    unknown_colour: UnknownPolicy = "error",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, SplitSummary]:
    """Prepare LoveDA Train/Val/Test (Urban and Rural) into ``dst``.

    Args:
        src: Folder holding the unpacked ``Train``, ``Val``, ``Test`` folders (directly or
            one level down).
        dst: Output folder; splits go to ``dst/train``, ``dst/val``, ``dst/test``.
        splits: Splits to prepare (``train``, ``val``, ``test``).
        patch_size: Patch size; ``None`` keeps the 1024² images whole and hard-links them.
        stride: Step between patches (default: the patch size).
        unknown_colour: ``"error"`` stops at a mask value outside 0..7 (naming the file,
            value and pixel count); ``"ignore"`` maps it to 255.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        DatasetNotFoundError: If ``src`` does not have the LoveDA layout (the message lists
            the expected files and the download page).
        DataFormatError: For unpaired, unreadable, truncated or mis-sized files, or unknown
            mask values; no output of the run is left behind.
        InvalidOptionError: For an invalid option.
        OutputExistsError: If ``dst`` holds a split prepared with other options.
    """
    src = Path(src)
    if not src.is_dir():
        raise _layout_error(src, [f"the folder '{src}' itself"])
    chosen = check_splits(splits, SPLITS, "loveda")
    unknown = check_unknown_policy(unknown_colour)
    if patch_size is None and stride is not None:
        raise InvalidOptionError(
            f"stride={stride!r} needs a patch_size; LoveDA images are kept whole by default"
        )
    size, step = (None, None) if patch_size is None else patch_options(patch_size, stride)
    options = {
        "patch_size": None if size is None else list(size),
        "stride": None if step is None else list(step),
        "unknown_colour": unknown,
    }
    plans: list[SplitPlan] = []
    for split in chosen:
        labelled = split in loveda.LABELLED_SPLITS
        folders = {"images": ".png"} | ({"masks": ".png"} if labelled else {})
        jobs = [
            FrameJob(
                stem=stem,
                image=image,
                label=mask,
                src=src,
                split_dir=Path(dst) / split,
                decode=loveda.decode,
                unknown=unknown,
                patch_size=size,
                stride=step,
                link=True,
            )
            for stem, image, mask in _pairs(src, split)
        ]
        header = make_header(
            "loveda", split, src, options, folders, ("red", "green", "blue"), loveda.CLASSES
        )
        plans.append(SplitPlan(split, process_frame, jobs, header))
    return run_plans(plans, dst, workers=workers, progress=progress, desc="loveda")


prepare = prepare_loveda
"""The preparation tool of this dataset (:func:`lossd.data.prepare.prepare`)."""
