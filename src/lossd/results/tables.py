"""The paper's tables, regenerated from run records: main table, per-class tables, loss table.

Every table is built from the frame of :func:`lossd.results.load_runs` (one row per run) and
aggregates the seeds of a cell (dataset, model, loss) as the mean and the sample standard
deviation (``ddof=1``), with the number of seeds ``n``. Values are percentages. A cell without
a completed run is :data:`MISSING` ("—"), never filled in; a cell with one seed shows no
standard deviation (its ``n`` says 1). The published numbers come from
``results/paper_reference.csv`` (:func:`load_reference`): the Lossd paper (Ma et al., Acta
Aeronautica et Astronautica Sinica 47(8):332780, 2026, DOI 10.7527/S1000-6893.2025.32780) and
the models' own publications (docs/reference.md, "Paper results" and "Baseline anchors"); a
value not checked against its publication is marked ``*``.

Each :class:`Table` keeps a numeric frame (written as CSV) and its formatted cells (written as
Markdown and LaTeX booktabs), so that a script, a test or the notebook can read either.

Which metrics the tables show, in which order and under which label, comes from the metric
catalogue (:data:`lossd.metrics.METRICS`, :data:`lossd.metrics.TABLES`); rows follow the
dataset and model registries and the loss order of :mod:`lossd.results.order`. A metric that a
record does not hold (mBF in records older than it) shows :data:`MISSING`.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.io import atomic_path
from lossd.metrics import get_metric, metric_names
from lossd.results.comparisons import paired_lookup, paired_results
from lossd.results.labels import Labels, headline_metric
from lossd.results.order import (
    BASE_LOSS,
    LOSSD_LOSS,
    ordered_datasets,
    ordered_losses,
    ordered_models,
    rank,
)
from lossd.results.paired import PairedResult, format_delta_ci
from lossd.results.runs import completed_runs, per_class_column

__all__ = [
    "MISSING",
    "REFERENCE_COLUMNS",
    "REFERENCE_NOTES",
    "REFERENCE_ORIGINS",
    "Table",
    "build_tables",
    "format_delta",
    "format_mean_std",
    "latex_escape",
    "latex_symbols",
    "load_reference",
    "loss_table",
    "main_table",
    "metric_label",
    "paired_table",
    "per_class_table",
    "summarize",
    "write_tables",
]

MISSING = "—"
"""Text of a cell that has no run (or no published value)."""

REFERENCE_COLUMNS = (
    "dataset",
    "model",
    "loss",
    "metric",
    "value",
    "origin",
    "source",
    "note",
    "detail",
)
REFERENCE_ORIGINS = ("lossd_paper", "model_paper")
"""``lossd_paper``: reported (or implied) by the Lossd paper; ``model_paper``: by the model's
own publication or its benchmark (the published baseline)."""
REFERENCE_NOTES = ("verified", "unverified", "implied", "third-party")
"""docs/reference.md legend: [V] verified, [UNV] unverified, [INF] implied, [3P] third-party."""

_PERCENT = 100.0
_DIGITS = 2
_STD_NOTE = (
    "Mean ± sample standard deviation (ddof=1) over seeds, in percent; n = number of seeds "
    "(no ± when n = 1); — = no completed run or no published value."
)
_SPLIT_NOTE = (
    "Split: where the numbers come from: test = the protocol's checkpoint on the test split "
    "(run record 'test' block); val (or another split name) = the selected epoch on the "
    "validation split. Published values are shown only beside test-set numbers. Protocol: "
    "original = the splits, selection and tested checkpoint of the code behind the published "
    "numbers; heldout = train on Train, select on Val, test once (docs/recipes.md); — = "
    "recorded before protocols existed."
)
CI_HEADER = "Δ [95 % CI]"
_CI_METHOD = (
    "the difference in points with a 95 % percentile interval from a hierarchical bootstrap "
    "(2,000 replicates: the seed pairs resampled, then the evaluated images within each seed, "
    "the same images for both losses; the metric recomputed from the resampled pixel counts, "
    "not averaged over images); * = the interval excludes 0"
)
_CI_NOTE = (
    f"Δ [95 % CI]: {_CI_METHOD}; — = the records hold no per-image counts (per_image.npz) for "
    "this cell."
)
_PAIRED_NOTE = (
    "Per seed: the difference of seed k against seed k of the base. p: two-sided paired "
    "sign-flip permutation test over matched images (the two losses' counts of an image "
    "swapped at random; 10,000 permutations, or all of them when there are fewer)."
)
Paired = Mapping[tuple[str, str, str, str], PairedResult]
"""``(dataset, model, loss, metric) -> PairedResult``; see
:func:`lossd.results.comparisons.paired_lookup`."""

_REF_NOTE = (
    "Paper: Ma et al. 2026 (Lossd; the abstract does not name the model, base = +Lossd minus "
    "the stated gain); published: the model's own paper or benchmark. * = not checked against "
    "the publication (unverified, implied or third-party; results/paper_reference.csv)."
)


@dataclass(frozen=True)
class Table:
    """A generated table: numbers (CSV) and formatted cells (Markdown, LaTeX).

    Args:
        name: File stem, e.g. ``main`` or ``per_class_loveda_IoU``.
        caption: One-line caption.
        data: Numeric frame (percentages; NaN where missing), written as CSV.
        display: Formatted cells, one string per cell, written as Markdown and LaTeX.
        label_columns: How many leading columns of ``display`` are labels (left-aligned).
        notes: Lines printed under the table.
    """

    name: str
    caption: str
    data: pd.DataFrame
    display: pd.DataFrame
    label_columns: int = 2
    notes: tuple[str, ...] = field(default=())

    def to_markdown(self) -> str:
        """GitHub Markdown: the caption in bold, the table, the notes."""
        body = tabulate(
            self.display.values.tolist(),
            headers=list(self.display.columns),
            tablefmt="github",
            disable_numparse=True,
        )
        notes = "".join(f"\n{note}\n" for note in self.notes)
        return f"**{self.caption}**\n\n{body}\n{notes}"

    def to_latex(self) -> str:
        """A ``table`` float holding a booktabs ``tabular`` (the document needs booktabs).

        The float, rules and cell escaping come from pandas' ``Styler.to_latex``; the notes go
        under the tabular, and the few non-ASCII symbols become LaTeX (:func:`latex_symbols`).
        """
        columns = list(self.display.columns)
        align = "l" * self.label_columns + "r" * (len(columns) - self.label_columns)
        styler = (
            self.display.style.hide(axis="index")
            .format(escape="latex")
            .format_index(escape="latex", axis=1)
        )
        body = styler.to_latex(
            hrules=True,
            column_format=align,
            caption=latex_escape(self.caption),
            label=f"tab:{self.name}",
            position="t",
            position_float="centering",
        )
        notes = "".join(
            f"\\par\\smallskip{{\\footnotesize {latex_escape(n)}}}\n" for n in self.notes
        )
        body = body.replace("\\end{table}", notes + "\\end{table}")
        header = f"% generated by lossd.results.tables ({self.name}); regenerate, do not edit\n"
        return header + latex_symbols(body)

    def to_csv(self) -> str:
        """The numeric frame as CSV (empty field where missing)."""
        text: str = self.data.to_csv(index=False, float_format="%.4f", na_rep="")
        return text

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``<name>.md``, ``<name>.tex`` and ``<name>.csv`` into ``out_dir`` atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, text in (
            (".md", self.to_markdown()),
            (".tex", self.to_latex()),
            (".csv", self.to_csv()),
        ):
            path = out / f"{self.name}{suffix}"
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            written.append(path)
        return written


_LATEX_SPECIAL = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
}
_LATEX_UNICODE = {"±": "$\\pm$", "—": "---", "Δ": "$\\Delta$", "á": "\\'a", "−": "$-$"}


def latex_symbols(text: str) -> str:
    """Spell out the few non-ASCII symbols the tables use (±, —, Δ, á, −) in plain LaTeX."""
    for symbol, latex in _LATEX_UNICODE.items():
        text = text.replace(symbol, latex)
    return text


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and spell out the few non-ASCII symbols (captions and notes)."""
    return latex_symbols("".join(_LATEX_SPECIAL.get(ch, ch) for ch in text))


def format_mean_std(mean: float, std: float, n: int, digits: int = _DIGITS) -> str:
    """``"52.40 ± 1.20"``; ``"52.40"`` when ``n == 1``; :data:`MISSING` when there is no value."""
    if n < 1 or not math.isfinite(mean):
        return MISSING
    if n == 1 or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_delta(delta: float, digits: int = _DIGITS) -> str:
    """Signed difference, ``"+1.20"`` / ``"-0.35"``; :data:`MISSING` when undefined."""
    if not math.isfinite(delta):
        return MISSING
    rounded = round(delta, digits)
    return f"{rounded if rounded != 0 else 0.0:+.{digits}f}"  # no "-0.00"


def metric_label(metric: str) -> str:
    """Display label of a metric in the catalogue (:attr:`lossd.metrics.Metric.label`).

    A per-class name (``IoU``) and a name outside the catalogue are shown as they are.
    """
    try:
        found = get_metric(metric)
    except InvalidOptionError:
        return metric
    return found.label if metric == found.name else metric


def summarize(
    runs: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    by: Sequence[str] = ("dataset", "model", "loss"),
) -> pd.DataFrame:
    """Mean, sample std and count over seeds of each metric, per cell, in percent.

    Only completed runs count. For each metric ``m`` the result has ``m`` (mean), ``m_std``
    (``ddof=1``, NaN for one value) and ``m_n`` (runs with a finite value); ``n`` is the number
    of completed runs of the cell, ``seeds`` their sorted seeds, ``split`` the split(s) their
    metrics come from (:func:`lossd.results.runs.reported_metrics`) and ``protocol`` their
    evaluation protocol(s) (``""`` for records older than protocols).

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        metrics: Metric columns (default: every metric of the catalogue and every per-class
            column).
        by: Cell keys.

    Returns:
        One row per cell, sorted by the keys.
    """
    done = completed_runs(runs)
    if metrics is None:
        means = metric_names()
        metrics = [c for c in done.columns if c in means or "/" in c]
    columns = [*by, "n", "seeds", "split", "protocol"]
    columns += [f"{m}{s}" for m in metrics for s in ("", "_std", "_n")]
    if done.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for keys, group in done.groupby(list(by), sort=True):
        row: dict[str, Any] = dict(zip(by, keys, strict=True))
        row["n"] = len(group)
        row["seeds"] = sorted(int(s) for s in group["seed"])
        splits = group["split"].dropna() if "split" in group else pd.Series(dtype=object)
        row["split"] = "+".join(sorted({str(s) for s in splits}))
        protocols = group["protocol"].dropna() if "protocol" in group else pd.Series(dtype=object)
        row["protocol"] = "+".join(sorted({str(s) for s in protocols}))
        for metric in metrics:
            values = (
                pd.to_numeric(group[metric], errors="coerce") * _PERCENT
                if metric in group
                else pd.Series(dtype=float)
            )
            finite = values[values.notna()]
            row[metric] = float(finite.mean()) if len(finite) else math.nan
            row[f"{metric}_std"] = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
            row[f"{metric}_n"] = len(finite)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# --- reference values -----------------------------------------------------------------------


def load_reference(path: str | Path) -> pd.DataFrame:
    """Read ``results/paper_reference.csv``: published values, one row per cell and origin.

    Columns :data:`REFERENCE_COLUMNS`; ``value`` in percent; ``origin`` one of
    :data:`REFERENCE_ORIGINS`; ``note`` one of :data:`REFERENCE_NOTES`.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataFormatError: If a column is missing, a value is not a number, an origin or note is
            unknown, or a (dataset, model, loss, metric, origin) appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference file '{path}' not found; expected a CSV with columns "
            f"{', '.join(REFERENCE_COLUMNS)} (the repository's results/paper_reference.csv)"
        )
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"reference file '{path}' lacks column(s) {missing}")
    values = pd.to_numeric(frame["value"], errors="coerce")
    for column, allowed in (("origin", REFERENCE_ORIGINS), ("note", REFERENCE_NOTES)):
        bad = sorted(set(frame[column]) - set(allowed))
        if bad:
            raise DataFormatError(
                f"reference file '{path}': {column} {bad} not one of {list(allowed)}"
            )
    if values.isna().any():
        line = int(values.isna().to_numpy().argmax()) + 2
        raise DataFormatError(
            f"reference file '{path}', line {line}: value "
            f"{frame['value'].iloc[line - 2]!r} is not a number (expected percent, e.g. 55.8)"
        )
    keys = ["dataset", "model", "loss", "metric", "origin"]
    duplicated = frame[frame.duplicated(keys, keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise DataFormatError(
            f"reference file '{path}': {'/'.join(first[keys])} appears more than once; keep "
            "one row per dataset, model, loss, metric and origin"
        )
    frame["value"] = values.astype(float)
    return frame


def _reference_cell(
    reference: pd.DataFrame | None,
    dataset: str,
    model: str,
    loss: str,
    metric: str,
    origin: str,
) -> tuple[float, str]:
    """(value, formatted) of one published number; (NaN, "—") when there is none."""
    if reference is None or reference.empty:
        return math.nan, MISSING
    hit = reference[
        (reference["dataset"] == dataset)
        & (reference["model"] == model)
        & (reference["loss"] == loss)
        & (reference["metric"] == metric)
        & (reference["origin"] == origin)
    ]
    if hit.empty:
        return math.nan, MISSING
    value = float(hit["value"].iloc[0])
    mark = "" if hit["note"].iloc[0] == "verified" else "*"
    text = f"{value:.2f}".rstrip("0")  # as published: 55.8, 70.0, 92.64
    return value, f"{text}0{mark}" if text.endswith(".") else f"{text}{mark}"


# --- tables ---------------------------------------------------------------------------------


def _cell(summary: pd.DataFrame, keys: Mapping[str, str], metric: str) -> tuple[float, float, int]:
    """(mean, std, n) of ``metric`` in the summary row matching ``keys``; (NaN, NaN, 0) if none."""
    if summary.empty or metric not in summary.columns:
        return math.nan, math.nan, 0
    mask = pd.Series(True, index=summary.index)
    for key, value in keys.items():
        mask &= summary[key] == value
    hit = summary[mask]
    if hit.empty:
        return math.nan, math.nan, 0
    row = hit.iloc[0]
    return float(row[metric]), float(row[f"{metric}_std"]), int(row[f"{metric}_n"])


def _base_vs_lossd(
    summary: pd.DataFrame, keys: Mapping[str, str], metric: str
) -> tuple[tuple[float, float, int], tuple[float, float, int], float, dict[str, float]]:
    """Base and +Lossd cells of ``keys``, their delta, and a table's numeric columns.

    The delta is NaN unless both losses have runs; the columns are ``base``, ``base_std``,
    ``base_n``, ``lossd``, ``lossd_std``, ``lossd_n`` and ``delta``.
    """
    base = _cell(summary, {**keys, "loss": BASE_LOSS}, metric)
    ours = _cell(summary, {**keys, "loss": LOSSD_LOSS}, metric)
    delta = ours[0] - base[0] if base[2] and ours[2] else math.nan
    compared = {
        "base": base[0],
        "base_std": base[1],
        "base_n": base[2],
        "lossd": ours[0],
        "lossd_std": ours[1],
        "lossd_n": ours[2],
        "delta": delta,
    }
    return base, ours, delta, compared


def _cell_values(summary: pd.DataFrame, keys: Mapping[str, str], column: str) -> str:
    """The split(s) (or protocols) of a cell's base and +Lossd runs (``""`` without runs)."""
    if summary.empty:
        return ""
    mask = summary["loss"].isin([BASE_LOSS, LOSSD_LOSS])
    for key, value in keys.items():
        mask &= summary[key] == value
    parts = {part for text in summary.loc[mask, column] for part in str(text).split("+") if part}
    return "+".join(sorted(parts))


def _metric_for(metric: str | Mapping[str, str] | None, dataset: str) -> str:
    """``metric`` for ``dataset`` (a name, or a per-dataset mapping); default its headline."""
    if metric is None:
        return headline_metric(dataset)
    if isinstance(metric, str):
        return metric
    return metric.get(dataset, headline_metric(dataset))


def main_table(
    runs: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    metric: str | Mapping[str, str] | None = None,
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    name: str | None = None,
    paired: Paired | None = None,
) -> Table:
    """Base against +Lossd per dataset and model, with the published numbers beside them.

    Rows are every dataset × every model (those with a base or +Lossd run, unless given), so a
    cell of the grid that has not run shows :data:`MISSING`.

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        reference: Frame of :func:`load_reference` (None: the published columns are missing).
        metric: One metric for every dataset, a mapping dataset -> metric, or None for
            :attr:`lossd.data.DatasetInfo.headline_metric`.
        datasets: Datasets (rows), default those in ``runs``.
        models: Models (rows), default those in ``runs``.
        name: File stem, default ``main`` (or ``main_<metric>`` for one metric).
        paired: Paired comparisons (:func:`lossd.results.comparisons.paired_results`) for the
            ``Δ [95 % CI]`` column; None: that column shows :data:`MISSING`.

    Returns:
        Columns: dataset, model, metric, split (where the numbers come from; published values
        only beside ``test``), protocol, base (mean ± std), +Lossd, Δ (+Lossd - base),
        Δ [95 % CI] (paired hierarchical bootstrap, ``*`` when it excludes 0), n
        (base/+Lossd seeds), paper base, paper +Lossd (Lossd paper), published base (the
        model's own paper).
    """
    labels = Labels.from_runs(runs)
    pair = runs[runs["loss"].isin([BASE_LOSS, LOSSD_LOSS])] if len(runs) else runs
    datasets = list(datasets) if datasets else ordered_datasets(pair["dataset"])
    models = list(models) if models else ordered_models(pair["model"])
    summary = summarize(pair)
    numeric, display = [], []
    for dataset in datasets:
        chosen = _metric_for(metric, dataset)
        for model in models:
            keys = {"dataset": dataset, "model": model}
            base, ours, delta, compared = _base_vs_lossd(summary, keys, chosen)
            result = (paired or {}).get((dataset, model, LOSSD_LOSS, chosen))
            compared.update(_ci_columns(result))
            split = _cell_values(summary, keys, "split")
            protocol = _cell_values(summary, keys, "protocol")
            # a published number stands only beside a number of the same kind: the test set
            refs = [
                _reference_cell(reference if split == "test" else None, *cell, chosen, origin)
                for cell, origin in (
                    ((dataset, model, BASE_LOSS), "lossd_paper"),
                    ((dataset, model, LOSSD_LOSS), "lossd_paper"),
                    ((dataset, model, BASE_LOSS), "model_paper"),
                )
            ]
            numeric.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": chosen,
                    "split": split,
                    "protocol": protocol,
                    **compared,
                    "paper_base": refs[0][0],
                    "paper_lossd": refs[1][0],
                    "published_base": refs[2][0],
                }
            )
            display.append(
                [
                    labels.dataset(dataset),
                    labels.model(model),
                    metric_label(chosen),
                    split or MISSING,
                    protocol or MISSING,
                    format_mean_std(*base),
                    format_mean_std(*ours),
                    format_delta(delta),
                    format_delta_ci(result) if result else MISSING,
                    f"{base[2]}/{ours[2]}",
                    refs[0][1],
                    refs[1][1],
                    refs[2][1],
                ]
            )
    headers = [
        "Dataset",
        "Model",
        "Metric",
        "Split",
        "Protocol",
        "Base",
        "+Lossd",
        "Δ",
        CI_HEADER,
        "n",
        "Paper base",
        "Paper +Lossd",
        "Published base",
    ]
    single = isinstance(metric, str)
    return Table(
        name=name or (f"main_{metric}" if single else "main"),
        caption=(
            f"Base recipe against +Lossd ({metric_label(str(metric))})"
            if single
            else "Base recipe against +Lossd (each dataset's headline metric)"
        ),
        data=pd.DataFrame(numeric, columns=list(numeric[0]) if numeric else None),
        display=pd.DataFrame(display, columns=headers),
        label_columns=3,
        notes=(_STD_NOTE + " n = base/+Lossd.", _CI_NOTE, _SPLIT_NOTE, _REF_NOTE),
    )


def _ci_columns(result: PairedResult | None) -> dict[str, float]:
    """Numeric columns of a paired comparison (NaN without one), in 0..100 points."""
    if result is None:
        return {"delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan}
    return {
        "delta_ci_low": result.ci_low * _PERCENT,
        "delta_ci_high": result.ci_high * _PERCENT,
        "p_value": result.p_value,
    }


def _class_facts(runs: pd.DataFrame) -> tuple[list[str], set[int]]:
    """Class names and evaluated class indices of a dataset's runs (the first run with them)."""
    for names, evaluated in zip(runs["class_names"], runs["eval_classes"], strict=True):
        if isinstance(names, list) and names:
            indices = set(evaluated) if isinstance(evaluated, list) else set(range(len(names)))
            return list(names), indices
    return [], set()


def per_class_table(
    runs: pd.DataFrame,
    dataset: str,
    metric: str = "IoU",
    reference: pd.DataFrame | None = None,
    models: Sequence[str] | None = None,
) -> Table:
    """Per-class base against +Lossd for one dataset: one row per model and class.

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        dataset: Dataset name.
        metric: Per-class metric of the catalogue (``lossd.metrics.per_class_names()``:
            ``IoU``, ``F1``, ``BIoU``, ``BF``, ``Precision``, ``Recall``).
        reference: Frame of :func:`load_reference`; its ``<metric>/<class>`` rows of the models'
            own papers fill the published column.
        models: Models (rows), default those with runs on ``dataset``.

    Returns:
        Columns: model, class (``*`` = outside the dataset's evaluated classes), base, +Lossd,
        Δ, n, published base.

    Raises:
        InvalidOptionError: If ``runs`` has no run of ``dataset``.
    """
    labels = Labels.from_runs(runs)
    subset = runs[(runs["dataset"] == dataset) & runs["loss"].isin([BASE_LOSS, LOSSD_LOSS])]
    if subset.empty:
        known = sorted(set(runs["dataset"])) if len(runs) else []
        raise InvalidOptionError(
            f"no base or +Lossd run of dataset '{dataset}'; the runs hold {known}"
        )
    class_names, evaluated = _class_facts(subset)
    models = list(models) if models else ordered_models(subset["model"])
    columns = [per_class_column(metric, c) for c in class_names]
    summary = summarize(subset, metrics=columns)
    numeric, display = [], []
    for model in models:
        for index, (class_name, column) in enumerate(zip(class_names, columns, strict=True)):
            base, ours, delta, compared = _base_vs_lossd(summary, {"model": model}, column)
            published = _reference_cell(reference, dataset, model, BASE_LOSS, column, "model_paper")
            numeric.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "class": class_name,
                    "evaluated": index in evaluated,
                    "metric": metric,
                    **compared,
                    "published_base": published[0],
                }
            )
            display.append(
                [
                    labels.model(model),
                    class_name if index in evaluated else f"{class_name} *",
                    format_mean_std(*base),
                    format_mean_std(*ours),
                    format_delta(delta),
                    f"{base[2]}/{ours[2]}",
                    published[1],
                ]
            )
    label = labels.dataset(dataset)
    notes = [_STD_NOTE + " n = base/+Lossd."]
    if len(evaluated) < len(class_names):
        notes.append("Classes marked * are outside the dataset's evaluation protocol (no mean).")
    notes.append(_REF_NOTE)
    return Table(
        name=f"per_class_{dataset}_{metric}",
        caption=f"Per-class {metric} on {label}: base recipe against +Lossd",
        data=pd.DataFrame(numeric),
        display=pd.DataFrame(
            display, columns=["Model", "Class", "Base", "+Lossd", "Δ", "n", "Published base"]
        ),
        label_columns=2,
        notes=tuple(notes),
    )


def loss_table(
    runs: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    paired: Paired | None = None,
) -> Table:
    """Every loss of each dataset and model, with its difference to the base recipe.

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        metrics: Mean metrics shown (each with a Δ column); default the catalogue's
            ``losses`` metrics (``lossd.metrics.metric_names("losses")``).
        losses: Losses (rows) in order, default every loss in ``runs``
            (:func:`lossd.results.order.ordered_losses`).
        paired: Paired comparisons with the base
            (:func:`lossd.results.comparisons.paired_results`): the Δ cells then carry their
            95 % interval.

    Returns:
        Columns: dataset, model, loss, n, then per metric the mean ± std and Δ (loss - base of
        the same dataset and model, with ``[95 % CI]`` where ``paired`` has the cell; blank on
        the base row, :data:`MISSING` without a base run).
    """
    labels = Labels.from_runs(runs)
    metrics = metric_names("losses") if metrics is None else list(metrics)
    datasets = ordered_datasets(runs["dataset"]) if len(runs) else []
    summary = summarize(runs, metrics=metrics)
    numeric, display = [], []
    for dataset in datasets:
        for model in ordered_models(runs.loc[runs["dataset"] == dataset, "model"]):
            cell_runs = runs[(runs["dataset"] == dataset) & (runs["model"] == model)]
            for loss in list(losses) if losses else ordered_losses(cell_runs["loss"]):
                keys = {"dataset": dataset, "model": model}
                row: dict[str, Any] = {**keys, "loss": loss}
                cells = [
                    labels.dataset(dataset),
                    labels.model(model),
                    labels.loss(loss),
                ]
                counts = []
                for metric in metrics:
                    mean, std, n = _cell(summary, {**keys, "loss": loss}, metric)
                    base = _cell(summary, {**keys, "loss": BASE_LOSS}, metric)
                    delta = mean - base[0] if n and base[2] else math.nan
                    row.update({metric: mean, f"{metric}_std": std, f"{metric}_n": n})
                    row[f"delta_{metric}"] = delta if loss != BASE_LOSS else math.nan
                    result = (paired or {}).get((dataset, model, loss, metric))
                    ci = _ci_columns(result)
                    row[f"delta_{metric}_ci_low"] = ci["delta_ci_low"]
                    row[f"delta_{metric}_ci_high"] = ci["delta_ci_high"]
                    counts.append(n)
                    cells.append(format_mean_std(mean, std, n))
                    if loss == BASE_LOSS:
                        cells.append("")
                    else:
                        cells.append(format_delta_ci(result) if result else format_delta(delta))
                row["n"] = max(counts, default=0)
                numeric.append(row)
                cells.insert(3, str(row["n"]))
                display.append(cells)
    headers = ["Dataset", "Model", "Loss", "n"]
    for metric in metrics:
        headers += [metric_label(metric), f"Δ {metric_label(metric)}"]
    return Table(
        name="losses",
        caption="Loss comparison: each loss added to the base recipe",
        data=pd.DataFrame(numeric),
        display=pd.DataFrame(display, columns=headers),
        label_columns=3,
        notes=(
            _STD_NOTE,
            "Δ = loss minus the base recipe of the same dataset and model; with [95 % CI] where "
            f"the records hold per-image counts: {_CI_METHOD}.",
        ),
    )


def paired_table(paired: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Every paired comparison in full: Δ with its interval, per seed, and the p-value.

    Args:
        paired: Frame of :func:`lossd.results.comparisons.paired_results`.
        runs: Frame of :func:`lossd.results.load_runs` (display names).

    Returns:
        Columns: dataset, model, loss, base, metric, Δ [95 % CI], per-seed Δ, p, seeds, images.
    """
    labels = Labels.from_runs(runs)
    kinds = ("dataset", "model", "loss")
    keys = [tuple(rank(k, str(row[k])) for k in kinds) for _, row in paired.iterrows()]
    order = paired.iloc[sorted(range(len(paired)), key=keys.__getitem__)]  # stable
    numeric, display = [], []
    for _, row in order.iterrows():
        result = PairedResult(
            **{k: row[k] for k in PairedResult.__dataclass_fields__ if k != "per_seed_delta"},
            per_seed_delta=tuple(row["per_seed_delta"]),
        )
        per_seed = ", ".join(format_delta(v * _PERCENT) for v in result.per_seed_delta)
        numeric.append(
            {
                "dataset": row["dataset"],
                "model": row["model"],
                "loss": row["loss"],
                "base": row["base"],
                "metric": result.metric,
                "delta": result.delta * _PERCENT,
                **_ci_columns(result),
                "per_seed_delta": _per_seed_csv(result.per_seed_delta),
                "seeds": ";".join(str(s) for s in row["seeds"]),
                "num_images": result.num_images,
                "exact": result.exact,
            }
        )
        display.append(
            [
                labels.dataset(row["dataset"]),
                labels.model(row["model"]),
                labels.loss(row["loss"]),
                labels.loss(row["base"]),
                metric_label(result.metric),
                format_delta_ci(result),
                per_seed,
                _format_p(result.p_value, result.exact),
                str(result.num_seeds),
                str(result.num_images),
            ]
        )
    headers = ["Dataset", "Model", "Loss", "Against", "Metric", CI_HEADER, "Per seed", "p"]
    headers += ["Seeds", "Images"]
    return Table(
        name="paired",
        caption="Paired comparisons with the base recipe: is the difference more than noise?",
        data=pd.DataFrame(numeric),
        display=pd.DataFrame(display, columns=headers),
        label_columns=5,
        notes=(_CI_NOTE, _PAIRED_NOTE),
    )


def _per_seed_csv(values: Sequence[float]) -> str:
    """Per-seed differences in points, ``;``-separated; empty where undefined (NaN)."""
    if not any(math.isfinite(v) for v in values):
        return ""
    return ";".join(f"{v * _PERCENT:.6f}" if math.isfinite(v) else "" for v in values)


def _format_p(p_value: float, exact: bool) -> str:
    if not math.isfinite(p_value):
        return MISSING
    text = f"{p_value:.4f}" if p_value >= 1e-4 else "<0.0001"
    return text + (" (exact)" if exact else "")


def recorded_metrics(runs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The ``metrics`` that at least one run records, in their order.

    A metric added to the catalogue after a study was trained (the BF score, for the studies
    of 2026-12-06 and before) has no value in its records; its columns and tables would hold
    only "—", so the tables of those records leave it out and stay as they were.
    """
    return [m for m in metrics if m in runs.columns and bool(runs[m].notna().any())]


def build_tables(
    runs: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    main_metrics: Sequence[str] | None = None,
    class_metrics: Sequence[str] | None = None,
    paired: pd.DataFrame | None = None,
) -> list[Table]:
    """Every table of the runs, in the order :func:`write_tables` writes them.

    ``main`` (headline metric per dataset) and ``main_<metric>``, then
    ``per_class_<dataset>_<metric>`` for each dataset with base or +Lossd runs, ``losses``
    when the runs hold a loss other than base and +Lossd, and ``paired`` when the records hold
    per-image counts.

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        reference: Published numbers (:func:`load_reference`), or None.
        main_metrics: Metrics of the ``main_<metric>`` tables and of the paired comparisons;
            default the catalogue's ``main`` metrics (``lossd.metrics.metric_names("main")``)
            that the runs record (:func:`recorded_metrics`).
        class_metrics: Per-class metrics of the ``per_class_*`` tables; default the per-class
            values of the main metrics.
        paired: Paired comparisons (:func:`lossd.results.comparisons.paired_results`); None:
            computed from the runs' per-image counts (seeded, so they regenerate exactly).

    Raises:
        InvalidOptionError: If ``runs`` holds no completed run.
    """
    done = completed_runs(runs)
    if done.empty:
        raise InvalidOptionError(
            "no completed run record to tabulate; train a grid first, e.g. python "
            "scripts/train.py -m experiment=synthetic_grid"
        )
    if main_metrics is None:
        main_metrics = recorded_metrics(done, metric_names("main"))
    if class_metrics is None:
        per_class = [get_metric(m).per_class for m in main_metrics]
        class_metrics = [name for name in per_class if name is not None]
    main_metrics, class_metrics = list(main_metrics), list(class_metrics)
    if paired is None:
        paired = paired_results(done, metrics=main_metrics)
    lookup = paired_lookup(paired)
    tables = [main_table(done, reference, paired=lookup)]
    tables += [main_table(done, reference, metric=m, paired=lookup) for m in main_metrics]
    pair = done[done["loss"].isin([BASE_LOSS, LOSSD_LOSS])]
    for dataset in ordered_datasets(pair["dataset"]):
        tables += [per_class_table(done, dataset, m, reference) for m in class_metrics]
    if set(done["loss"]) - {BASE_LOSS, LOSSD_LOSS}:
        losses_metrics = recorded_metrics(done, metric_names("losses"))
        tables.append(loss_table(done, metrics=losses_metrics, paired=lookup))
    if len(paired):
        tables.append(paired_table(paired, done))
    return tables


def write_tables(
    runs: pd.DataFrame,
    out_dir: str | Path,
    reference: pd.DataFrame | None = None,
    main_metrics: Sequence[str] | None = None,
    class_metrics: Sequence[str] | None = None,
    paired: pd.DataFrame | None = None,
) -> list[Path]:
    """Write every table of :func:`build_tables` as ``.md``, ``.tex``, ``.csv``.

    Args:
        runs: Frame of :func:`lossd.results.load_runs`.
        out_dir: Folder of the tables.
        reference: Published numbers (:func:`load_reference`), or None.
        main_metrics: Metrics of the ``main_<metric>`` tables (default: :func:`build_tables`).
        class_metrics: Per-class metrics of the ``per_class_*`` tables (default: the same).
        paired: Paired comparisons, or None to compute them (:func:`build_tables`).

    Returns:
        The files written.

    Raises:
        InvalidOptionError: If ``runs`` holds no completed run.
    """
    written: list[Path] = []
    for table in build_tables(runs, reference, main_metrics, class_metrics, paired):
        written += table.write(out_dir)
    return written
