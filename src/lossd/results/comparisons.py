"""Paired comparisons of losses over the runs of a grid, from their per-image counts.

Every record written since per-image counts exist has ``per_image.npz`` beside it
(:func:`lossd.records.read_per_image`). :func:`paired_results` compares, per dataset × model,
each loss with the base recipe: the difference with a hierarchical-bootstrap 95 % interval, the
per-seed differences and a sign-flip permutation p-value (:mod:`lossd.results.paired`), over the
images of the split the tables report (test where the record has test metrics, else
validation). The tables (:mod:`lossd.results.tables`) show them; the figures
(:mod:`lossd.results.evidence`) read the same per-image counts (:func:`per_image_by_seed`).
"""

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lossd.errors import DatasetNotFoundError, LossdError
from lossd.metrics import PerImageStats
from lossd.records import read_per_image, read_record
from lossd.results.order import BASE_LOSS
from lossd.results.paired import PairedResult, paired_comparison
from lossd.results.runs import completed_runs

__all__ = [
    "NUM_BOOTSTRAP",
    "NUM_PERMUTATIONS",
    "STATS_SEED",
    "paired_lookup",
    "paired_results",
    "per_image_by_seed",
    "reported_per_image",
]

log = logging.getLogger(__name__)

NUM_BOOTSTRAP = 2000
"""Bootstrap replicates of the tables' intervals."""
NUM_PERMUTATIONS = 10000
"""Sign-flip permutations of the tables' p-values (exact enumeration when fewer exist)."""
STATS_SEED = 0
"""Seed of the resampling, so the intervals in committed tables regenerate exactly."""


def reported_per_image(record: Mapping[str, Any]) -> PerImageStats:
    """The per-image counts of the evaluation a record reports (:func:`reported_metrics`).

    The ``test`` group when the record has test metrics, else ``val`` (a training run) or
    ``eval`` (``scripts/evaluate.py``).

    Raises:
        DatasetNotFoundError: If the record has no per-image counts for that evaluation.
        DataFormatError: If the file does not belong to the record.
    """
    groups = read_per_image(record)
    test = record.get("test")
    if isinstance(test, Mapping) and isinstance(test.get("metrics"), Mapping):
        wanted = "test"
    else:
        wanted = "val" if "val" in groups else "eval"
    if wanted not in groups:
        raise DatasetNotFoundError(
            f"run record '{record.get('path')}' has no per-image counts of its {wanted} "
            f"evaluation (it has {sorted(groups)})"
        )
    return groups[wanted]


def per_image_by_seed(cell: pd.DataFrame) -> dict[int, PerImageStats]:
    """Seed -> reported per-image counts of a cell's runs (seeds without counts left out)."""
    out: dict[int, PerImageStats] = {}
    for _, run in cell.sort_values("seed").iterrows():
        if not Path(str(run["path"])).is_file():  # e.g. a W&B run: no per-image file
            continue
        try:
            out[int(run["seed"])] = reported_per_image(read_record(str(run["path"])))
        except LossdError as err:
            log.info("no per-image counts for '%s': %s", run["path"], err)
    return out


def paired_results(
    runs: pd.DataFrame,
    base: str = BASE_LOSS,
    losses: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    num_bootstrap: int = NUM_BOOTSTRAP,
    num_permutations: int = NUM_PERMUTATIONS,
    seed: int = STATS_SEED,
) -> pd.DataFrame:
    """Paired comparisons of every loss with ``base``, per dataset × model.

    Seeds are paired by number (seed k of the loss against seed k of the base); only seeds both
    have, with per-image counts, count. Cells without such a pair are left out.

    Args:
        runs: Frame of :func:`lossd.results.load_runs` (needs the ``path`` column).
        base: The reference loss.
        losses: Losses compared with it (default every other loss in ``runs``).
        metrics: Metrics compared (recomputed from resampled counts; default those of the main
            tables, ``lossd.metrics.metric_names("main")``).
        num_bootstrap: Bootstrap replicates.
        num_permutations: Sign-flip permutations.
        seed: Seed of the resampling.

    Returns:
        One row per dataset, model, loss and metric: ``base`` plus the fields of
        :class:`lossd.results.paired.PairedResult` (``seeds`` lists the seeds paired).
    """
    done = completed_runs(runs)
    columns = ["dataset", "model", "loss", "base", "seeds"]
    rows: list[dict[str, Any]] = []
    if done.empty:
        return pd.DataFrame(columns=columns)
    compared = list(losses) if losses else [x for x in done["loss"].unique() if x != base]
    for (dataset, model), cell in done.groupby(["dataset", "model"], sort=False):
        base_runs = per_image_by_seed(cell[cell["loss"] == base])
        if not base_runs:
            continue
        eval_classes = list(cell["eval_classes"].iloc[0])
        for loss in compared:
            other_runs = per_image_by_seed(cell[cell["loss"] == loss])
            seeds = sorted(set(base_runs) & set(other_runs))
            if not seeds:
                continue
            results = paired_comparison(
                [base_runs[s] for s in seeds],
                [other_runs[s] for s in seeds],
                eval_classes,
                metrics,
                num_bootstrap=num_bootstrap,
                num_permutations=num_permutations,
                seed=seed,
            )
            for result in results.values():
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "loss": loss,
                        "base": base,
                        "seeds": seeds,
                        **result.to_dict(),
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    return frame


def paired_lookup(frame: pd.DataFrame) -> dict[tuple[str, str, str, str], PairedResult]:
    """``(dataset, model, loss, metric) -> PairedResult`` from :func:`paired_results`."""
    fields = PairedResult.__dataclass_fields__
    out = {}
    for _, row in frame.iterrows():
        values = {k: row[k] for k in fields}
        values["per_seed_delta"] = tuple(values["per_seed_delta"])
        out[(row["dataset"], row["model"], row["loss"], row["metric"])] = PairedResult(**values)
    return out
