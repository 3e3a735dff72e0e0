"""UAVid: from the unpacked image release to the prepared layout.

Raw layout (docs/datasets.md §2): ``uavid_{train,val,test}/seqN/Images/<frame>.png`` and, for
train and val, ``seqN/Labels/<frame>.png`` (colour labels, same name). Frames of 2160×3840 and
2160×4096 px are cut into patches (1024² at stride 1024 by default) whose last row and column
are padded (image 0, mask 255), so every pixel is kept and each patch name
``seqN_<frame>_<row>_<col>`` gives its offset in the frame. Unlike GeoSeg, images and labels
are paired by sorted name (not directory order) and the top 112 rows are not dropped.
"""

from collections.abc import Sequence
from pathlib import Path

from lossd.data import uavid
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
from lossd.errors import DataFormatError, DatasetNotFoundError

__all__ = ["SPLITS", "prepare_uavid"]

SPLITS: tuple[str, ...] = tuple(uavid.SPLIT_FOLDERS)


def _layout_error(src: Path, missing: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"'{src}' does not look like the UAVid download: missing {missing}. Expected "
        f"uavid_train/seq*/{uavid.IMAGE_DIR}/*.png with seq*/{uavid.LABEL_DIR}/*.png, the same "
        f"for uavid_val, and uavid_test/seq*/{uavid.IMAGE_DIR}/*.png (directly in '{src}' or "
        f"in {uavid.RELEASE_FOLDER}/). Download the image release from {uavid.DOWNLOAD_URL} "
        "(or pass --splits with the splits you have)"
    )


def _natural(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else -1, name)


def _frames(src: Path, split: str) -> list[tuple[str, Path, Path | None]]:
    """``(seqN_<frame>, image, label or None)`` for every frame of a split."""
    folder = uavid.SPLIT_FOLDERS[split]
    root = find_dir(src, folder) or find_dir(src / uavid.RELEASE_FOLDER, folder)
    if root is None:
        raise _layout_error(src, f"{folder}/")
    sequences = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural(p.name))
    frames: list[tuple[str, Path, Path | None]] = []
    for sequence in sequences:
        images = sorted((sequence / uavid.IMAGE_DIR).glob("*.png"))
        if not images:
            raise _layout_error(src, f"{folder}/{sequence.name}/{uavid.IMAGE_DIR}/*.png")
        if split not in uavid.LABELLED_SPLITS:
            frames += [(f"{sequence.name}_{p.stem}", p, None) for p in images]
            continue
        labels = sorted((sequence / uavid.LABEL_DIR).glob("*.png"))
        if not labels:
            raise _layout_error(src, f"{folder}/{sequence.name}/{uavid.LABEL_DIR}/*.png")
        unpaired = sorted({p.name for p in images} ^ {p.name for p in labels})
        if unpaired:
            raise DataFormatError(
                f"frames and labels of '{sequence}' do not pair up by name: {unpaired[:5]} "
                f"({len(unpaired)} unpaired); each {uavid.IMAGE_DIR}/<frame>.png needs a "
                f"{uavid.LABEL_DIR}/<frame>.png"
            )
        frames += [
            (f"{sequence.name}_{image.stem}", image, label)
            for image, label in zip(images, labels, strict=True)
        ]
    if not frames:
        raise _layout_error(src, f"{folder}/seq*/")
    return frames


def prepare_uavid(
    src: str | Path,
    dst: str | Path,
    *,
    splits: Sequence[str] = SPLITS,
    patch_size: int | tuple[int, int] = 1024,
    stride: int | tuple[int, int] | None = None,
    unknown_colour: UnknownPolicy = "error",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, SplitSummary]:
    """Prepare UAVid train/val/test into patches in ``dst``.

    Args:
        src: Folder holding ``uavid_train``, ``uavid_val``, ``uavid_test`` (directly or one
            level down, e.g. in ``uavid_v1.5_official_release_image``).
        dst: Output folder; splits go to ``dst/train``, ``dst/val``, ``dst/test``.
        splits: Splits to prepare.
        patch_size: Patch size, ``n`` or ``(height, width)``.
        stride: Step between patches (default: the patch size); at most the patch size.
        unknown_colour: ``"error"`` stops at a label colour not in the palette (naming the
            file, colour and pixel count); ``"ignore"`` maps it to 255.
        workers: Worker processes.
        progress: Show a progress bar.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        DatasetNotFoundError: If ``src`` does not have the UAVid layout.
        DataFormatError: For unpaired, unreadable, truncated or mis-sized files, or unknown
            label colours; no output of the run is left behind.
        InvalidOptionError: For an invalid option.
        OutputExistsError: If ``dst`` holds a split prepared with other options.
    """
    src = Path(src)
    if not src.is_dir():
        raise _layout_error(src, f"the folder '{src}' itself")
    chosen = check_splits(splits, SPLITS, "uavid")
    unknown = check_unknown_policy(unknown_colour)
    size, step = patch_options(patch_size, stride)
    options = {"patch_size": list(size), "stride": list(step), "unknown_colour": unknown}
    plans: list[SplitPlan] = []
    for split in chosen:
        labelled = split in uavid.LABELLED_SPLITS
        folders = {"images": ".png"} | ({"masks": ".png"} if labelled else {})
        jobs = [
            FrameJob(
                stem=stem,
                image=image,
                label=label,
                src=src,
                split_dir=Path(dst) / split,
                decode=uavid.decode,
                unknown=unknown,
                patch_size=size,
                stride=step,
            )
            for stem, image, label in _frames(src, split)
        ]
        header = make_header(
            "uavid", split, src, options, folders, ("red", "green", "blue"), uavid.CLASSES
        )
        plans.append(SplitPlan(split, process_frame, jobs, header))
    return run_plans(plans, dst, workers=workers, progress=progress, desc="uavid")
