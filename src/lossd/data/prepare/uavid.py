"""UAVid: from the unpacked image release to the prepared layout.

Raw layout (docs/datasets.md §2): ``uavid_{train,val,test}/seqN/Images/<frame>.png`` and, for
train and val, ``seqN/Labels/<frame>.png`` (colour labels, same name). Frames are 2160×3840 or
2160×4096 px.

Train and val follow GeoSeg's ``tools/uavid_patch_split.py`` (@9453fe4), which pads every
frame to 2160×4096 anchored at the bottom-right (``PadIfNeeded(min_height=2160,
min_width=4096, position='bottom_right')``, L101-103), keeps the bottom 2048 rows and right
4096 columns (``img[-2048:, -4096:]``, L134) and cuts 1024² tiles at stride 1024 (L136-143,
with the sizes of README.md L201-224): 2×4 = 8 tiles per frame, the top 112 rows dropped. A
3840-wide frame gets 256 padding columns on the *left*. Padding is 0 in the image
(``value=[0, 0, 0]``, L103) and 255 = ignore in the mask: GeoSeg fills the colour label with
white (``mask_value=[255, 255, 255]``, L103), which its decoder maps to 255 (L32, L77), but
under albumentations 1.x only; 2.x ignores ``mask_value``, pads black and so labels the
strip as clutter (docs/datasets.md §2). lossd always writes 255.

Patch names keep the convention ``seqN_<frame>_<row>_<col>`` with the offset in the *source
frame*: rows 112 and 1136, columns 0, 1024, 2048, 3072 for a 4096-wide frame and -256, 768,
1792, 2816 for a 3840-wide one (``seq1_000000_112_-256``: the first 256 columns of that patch
are padding). ``meta.json`` gives each frame's size and each patch's offset and extent, so the
patches can be pasted back into the frame (rows 0..111 are not covered).

The test split (unlabelled, predicted for the CodaLab server) keeps every frame whole, a hard
link to the raw PNG where the file system allows (``seqN_<frame>_0_0.png``): GeoSeg does not cut
test frames but predicts them whole, padded at the top/left to a multiple of 1152×1024
(``inference_uavid.py``, README.md L268-275; conf/inference/uavid.yaml).

Unlike GeoSeg, images and labels are paired by sorted name (not directory order).
Preparation version 3 (this one; :data:`lossd.data.uavid.INFO`): version 1 cut train and val
over the whole frame (12 tiles of 1024² per frame), version 2 cut the test frames into 1024²
patches; a split that this version does not read unchanged is refused with the command to redo
it (:func:`lossd.data.prepared.stale_reason`).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lossd.data import uavid
from lossd.data._labels import UnknownPolicy, check_unknown_policy
from lossd.data.prepare._frames import FrameJob, process_frame
from lossd.data.prepare._grid import pair, patch_options
from lossd.data.prepare._runner import (
    SplitPlan,
    SplitSummary,
    check_splits,
    find_dir,
    make_header,
    run_plans,
)
from lossd.errors import DataFormatError, DatasetNotFoundError

__all__ = ["DEFAULT_PATCH_SIZE", "GEOSEG_REGION", "SPLITS", "prepare", "prepare_uavid"]

SPLITS: tuple[str, ...] = tuple(uavid.SPLIT_FOLDERS)
DEFAULT_PATCH_SIZE: int | None = 1024
"""GeoSeg's --split-size-h/-w 1024 (README.md:201-224 @9453fe4)."""

GEOSEG_REGION: tuple[int, int] = (2048, 4096)
"""Rows and columns kept at the bottom-right of each train/val frame: GeoSeg pads frames to
4096 columns (``min_width=4096``, tools/uavid_patch_split.py L102 @9453fe4) and keeps
``img[-2048:, -4096:]`` (L134)."""


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
    region: int | tuple[int, int] | None = GEOSEG_REGION,
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
        region: ``(rows, columns)`` kept at the bottom-right of each train/val frame and cut
            into patches (default GeoSeg's 2048×4096: 8 tiles of 1024² per frame; a patch
            of pure padding, possible only with other patch sizes, is skipped); ``None`` cuts
            the whole frame. The test frames are always kept whole.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        DatasetNotFoundError: If ``src`` does not have the UAVid layout.
        DataFormatError: For unpaired, unreadable, truncated or mis-sized files, or unknown
            label colours; no output of the run is left behind.
        InvalidOptionError: For an invalid option.
        OutputExistsError: If ``dst`` holds a split prepared with other options, or by a
            preparation version this one does not read (the message says how to redo it).
    """
    src = Path(src)
    if not src.is_dir():
        raise _layout_error(src, f"the folder '{src}' itself")
    chosen = check_splits(splits, SPLITS, "uavid")
    unknown = check_unknown_policy(unknown_colour)
    size, step = patch_options(patch_size, stride)
    kept = None if region is None else pair(region, "region")
    plans: list[SplitPlan] = []
    for split in chosen:
        labelled = split in uavid.LABELLED_SPLITS
        options: dict[str, Any] = {"unknown_colour": unknown}
        if labelled:
            options |= {
                "patch_size": list(size),
                "stride": list(step),
                "region": None if kept is None else list(kept),
            }
        else:  # whole frames, for GeoSeg's padded windows at test time
            options |= {"patch_size": None}
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
                patch_size=size if labelled else None,
                stride=step if labelled else None,
                link=not labelled,
                region=kept if labelled else None,
            )
            for stem, image, label in _frames(src, split)
        ]
        header = make_header(
            "uavid", split, src, options, folders, ("red", "green", "blue"), uavid.CLASSES
        )
        plans.append(SplitPlan(split, process_frame, jobs, header))
    return run_plans(plans, dst, workers=workers, progress=progress, desc="uavid")


prepare = prepare_uavid
"""The preparation tool of this dataset (:func:`lossd.data.prepare.prepare`)."""
