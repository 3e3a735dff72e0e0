"""Running a preparation: option checks, the worker pool, progress, meta.json and undo.

A dataset module turns its raw folder into one :class:`SplitPlan` per split: a picklable job per
source image and the top-level function that processes one job. :func:`run_plans` then

1. refuses a split folder made with other options, or holding files it did not make;
2. writes each split's ``meta.json`` with ``"complete": false``;
3. processes all jobs, inline (``workers=1``) or in a pool of ``workers`` processes,
   with a progress bar; each job skips outputs that already exist (a rerun resumes);
4. on success rewrites each ``meta.json`` with the sources, patches and md5s;
5. on a failure lets running jobs finish, removes every file this run wrote (and the
   ``meta.json`` and folders it created), and re-raises: no partial output is left behind.
"""

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

import lossd
from lossd.data.prepare._meta import COMPARED_KEYS, FORMAT_VERSION, write_meta
from lossd.data.prepare._outputs import SourceResult
from lossd.data.prepared import read_meta, stale_reason
from lossd.data.registry import get_info
from lossd.errors import InvalidOptionError, OutputExistsError

__all__ = [
    "SplitPlan",
    "SplitSummary",
    "check_splits",
    "check_workers",
    "find_dir",
    "make_header",
    "run_plans",
]

Task = tuple[int, Callable[[Any], SourceResult], Any]


@dataclass(frozen=True)
class SplitPlan:
    """Everything needed to prepare one split.

    Attributes:
        split: Split name (``train``, ``val`` or ``test``), the output sub-folder.
        process: Top-level (picklable) function that prepares one job.
        jobs: One picklable job per source image.
        header: The ``meta.json`` fields known before processing (see :func:`make_header`).
    """

    split: str
    process: Callable[[Any], SourceResult]
    jobs: Sequence[Any]
    header: dict[str, Any]


@dataclass(frozen=True)
class SplitSummary:
    """What a preparation did to one split.

    Attributes:
        split: Split name.
        path: The split folder.
        sources: Number of source images.
        patches: Number of patches (each an image and, if labelled, its masks).
        files_written: Files written by this run.
        files_skipped: Files that already existed and were kept.
    """

    split: str
    path: Path
    sources: int
    patches: int
    files_written: int
    files_skipped: int


def check_splits(splits: Iterable[str], known: Sequence[str], dataset: str) -> tuple[str, ...]:
    """Validate a selection of splits.

    Raises:
        InvalidOptionError: If it is empty, repeats a split or names an unknown one.
    """
    chosen = tuple(splits)
    unknown = [s for s in chosen if s not in known]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise InvalidOptionError(
            f"splits={list(chosen)} is not valid for {dataset}; expected distinct names "
            f"from {list(known)}"
        )
    return chosen


def check_workers(workers: int) -> int:
    """Validate the number of worker processes.

    Raises:
        InvalidOptionError: If it is not a positive int.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidOptionError(f"workers={workers!r}: expected a positive int")
    return workers


def find_dir(root: Path, name: str) -> Path | None:
    """``root/name`` or ``root/<one folder>/name`` (archives often unpack into a folder)."""
    if (root / name).is_dir():
        return root / name
    matches = sorted(p for p in root.glob(f"*/{name}") if p.is_dir())
    return matches[0] if len(matches) == 1 else None


def make_header(
    dataset: str,
    split: str,
    src: Path,
    options: dict[str, Any],
    folders: dict[str, str],
    band_order: Sequence[str],
    classes: Sequence[str],
) -> dict[str, Any]:
    """The ``meta.json`` fields fixed before processing.

    ``preparation_version`` is the dataset's (:attr:`DatasetInfo.preparation_version`).

    Args:
        dataset: Dataset name.
        split: Split name.
        src: Raw folder; source file names in ``meta.json`` are relative to it.
        options: Options that change the outputs (patch size, stride, bands, ...).
        folders: Output folder -> file suffix, e.g. ``{"images": ".png", "masks": ".png"}``.
        band_order: Band names of the image patches.
        classes: Class names in index order.
    """
    return {
        "format": FORMAT_VERSION,
        "preparation_version": get_info(dataset).preparation_version,
        "tool": {"name": "lossd", "version": lossd.__version__},
        "dataset": dataset,
        "split": split,
        "complete": False,
        "src": str(src.resolve()),
        "options": options,
        "folders": folders,
        "band_order": list(band_order),
        "classes": list(classes),
        "ignore_index": 255,
        "num_patches": 0,
        "sources": [],
    }


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one core per worker: the pool is the parallelism


def _run_tasks(tasks: list[Task], workers: int, bar: tqdm, results: list[tuple[int, Any]]) -> None:
    """Run every task, appending ``(plan index, result)`` to ``results`` as they finish.

    On a failure, running tasks are allowed to finish (their results are appended, so the
    caller can remove their files), pending ones are cancelled, and the error is re-raised.
    """
    if workers == 1 or len(tasks) == 1:
        for index, process, job in tasks:
            results.append((index, process(job)))
            bar.update()
        return
    # Workers fork from a clean server process (no fork of a process that may hold GDAL or
    # OpenCV threads) that imported this package once, so they start fast and share its pages.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lossd.data.prepare"])
    size = min(workers, len(tasks))
    with ProcessPoolExecutor(size, mp_context=context, initializer=_init_worker) as pool:
        futures: dict[Future[SourceResult], int] = {
            pool.submit(process, job): index for index, process, job in tasks
        }
        collected: set[Future[SourceResult]] = set()
        try:
            for future in as_completed(futures):
                collected.add(future)
                results.append((futures[future], future.result()))
                bar.update()
        except Exception:
            for future in futures:
                future.cancel()
            for future in futures:
                if future in collected or future.cancelled():
                    continue
                try:
                    results.append((futures[future], future.result()))
                except Exception:  # its own files were already removed by the job
                    continue
            raise


def _claim_split(split_dir: Path, header: dict[str, Any]) -> bool:
    """Check that the split folder may be (re)used; return True if meta.json must be made."""
    meta = read_meta(split_dir)
    if meta is not None:
        stale = stale_reason(split_dir, get_info(str(header["dataset"])), meta)
        if stale is not None:
            raise OutputExistsError(stale)
        differ = [k for k in COMPARED_KEYS if meta.get(k) != header.get(k)]
        if differ:
            details = "; ".join(f"{k}: {meta.get(k)} -> {header.get(k)}" for k in differ)
            raise OutputExistsError(
                f"'{split_dir}' was prepared with other settings ({details}); use another "
                "--dst, or delete that folder to prepare it anew"
            )
        return False
    if split_dir.is_dir() and any(split_dir.iterdir()):
        raise OutputExistsError(
            f"'{split_dir}' holds files but no meta.json, so it was not made by this tool; "
            "use an empty or new --dst"
        )
    return True


def _missing_dirs(plans: Sequence[SplitPlan], dst: Path) -> list[Path]:
    """Folders this run may create, deepest first, that do not exist yet."""
    candidates = [dst] + [dst / p.split for p in plans]
    candidates += [dst / p.split / folder for p in plans for folder in p.header["folders"]]
    return sorted((c for c in candidates if not c.exists()), key=lambda c: -len(c.parts))


def _undo(results: list[tuple[int, SourceResult]], metas: list[Path], dirs: list[Path]) -> None:
    for _, result in results:
        for name in result.written:
            Path(name).unlink(missing_ok=True)
    for meta in metas:
        meta.unlink(missing_ok=True)
    for folder in dirs:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def run_plans(
    plans: Sequence[SplitPlan], dst: str | Path, *, workers: int, progress: bool, desc: str
) -> dict[str, SplitSummary]:
    """Prepare every split of ``plans`` into ``dst`` (see the module docstring).

    Args:
        plans: One plan per split.
        dst: Output root; each split goes to ``dst/<split>``.
        workers: Number of worker processes (1 = run in this process).
        progress: Show a progress bar (one step per source image).
        desc: Label of the progress bar.

    Returns:
        ``{split: SplitSummary}``.

    Raises:
        OutputExistsError: If a split folder was made with other options or by something else.
        DataFormatError, DatasetNotFoundError: From the jobs (bad or unreadable files).
    """
    dst = Path(dst)
    check_workers(workers)
    new_meta = [plan for plan in plans if _claim_split(dst / plan.split, plan.header)]
    new_dirs = _missing_dirs(plans, dst)
    created_meta: list[Path] = []
    results: list[tuple[int, SourceResult]] = []
    tasks: list[Task] = [(i, p.process, job) for i, p in enumerate(plans) for job in p.jobs]
    try:
        for plan in new_meta:
            (dst / plan.split).mkdir(parents=True, exist_ok=True)
            write_meta(dst / plan.split, plan.header)
            created_meta.append(dst / plan.split / "meta.json")
        with tqdm(total=len(tasks), desc=desc, unit="image", disable=not progress) as bar:
            _run_tasks(tasks, workers, bar, results)
    except Exception:
        _undo(results, created_meta, new_dirs)
        raise
    summaries: dict[str, SplitSummary] = {}
    for index, plan in enumerate(plans):
        done = sorted((r for i, r in results if i == index), key=lambda r: r.record["stem"])
        sources = [r.record for r in done]
        patches = sum(len(s["patches"]) for s in sources)
        meta = {**plan.header, "complete": True, "num_patches": patches, "sources": sources}
        write_meta(dst / plan.split, meta)
        summaries[plan.split] = SplitSummary(
            split=plan.split,
            path=dst / plan.split,
            sources=len(sources),
            patches=patches,
            files_written=sum(len(r.written) for r in done),
            files_skipped=sum(r.skipped for r in done),
        )
    return summaries
