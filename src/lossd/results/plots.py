"""Figures of a grid's runs: per-class gains, boundary against region quality, error reach.

Used by ``notebooks/analysis.ipynb``; every function takes the frame of
:func:`lossd.results.load_runs` and returns a matplotlib ``Figure`` built without pyplot (no
display needed, no global figure list), so a script can ``fig.savefig(...)`` it.

- :func:`plot_class_deltas`: per-class difference +Lossd - base (mean over seeds) per model.
- :func:`plot_metric_scatter`: every run's Boundary IoU against its mIoU (Cheng et al., "Boundary
  IoU", CVPR 2021: region scores hide boundary quality, so a boundary loss should move the
  runs up more than right).
- :func:`error_histograms` / :func:`plot_error_histograms`: where the wrong pixels lie
  (over-segmentation reach outside the true region, under-segmentation depth inside it;
  :mod:`lossd.metrics.diagnostics`), the failure modes the Lossd paper (Ma et al. 2026,
  DOI 10.7527/S1000-6893.2025.32780) targets; needs runs trained with
  ``metrics.diagnostics=true``.
- :func:`predict_examples` / :func:`plot_examples`: a run's best checkpoint on a few
  validation images, beside the truth.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lossd.errors import InvalidOptionError
from lossd.io.colours import colorize
from lossd.records import read_record
from lossd.results.labels import Labels
from lossd.results.order import loss_colours, ordered_datasets, ordered_losses, ordered_models
from lossd.results.runs import completed_runs
from lossd.results.tables import metric_label, per_class_table

__all__ = [
    "ERROR_KINDS",
    "Example",
    "error_histograms",
    "plot_class_deltas",
    "plot_error_histograms",
    "plot_examples",
    "plot_metric_scatter",
    "predict_examples",
]

ERROR_KINDS = {
    "fp_distance_hist": "over-segmentation: false positives by distance outside the true region",
    "fn_depth_hist": "under-segmentation: false negatives by depth inside the true region",
}
"""Histogram field of a record -> what it shows."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_class_deltas(
    runs: pd.DataFrame, dataset: str, metric: str = "IoU", models: Sequence[str] | None = None
) -> Figure:
    """Bars of the per-class difference +Lossd - base (percentage points), one colour per model.

    A class with no base or no +Lossd run of a model has no bar.

    Raises:
        InvalidOptionError: If there is no base or +Lossd run of ``dataset``.
    """
    labels = Labels.from_runs(runs)
    data = per_class_table(runs, dataset, metric, models=models).data
    models = ordered_models(data["model"]) if models is None else list(models)
    classes = list(dict.fromkeys(data["class"]))
    fig = Figure(figsize=(max(5.0, 0.9 * len(classes) + 1.5), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(models))
    x = np.arange(len(classes))
    for i, model in enumerate(models):
        deltas = data[data["model"] == model].set_index("class")["delta"].reindex(classes)
        ax.bar(
            x + (i - (len(models) - 1) / 2) * width,
            deltas.to_numpy(float),
            width,
            label=labels.model(model),
        )
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    evaluated = dict(zip(data["class"], data["evaluated"], strict=False))
    ax.set_xticks(
        x, [c if evaluated.get(c, True) else f"{c} *" for c in classes], rotation=30, ha="right"
    )
    ax.set_ylabel(f"Δ {metric_label(metric)} (+Lossd - base), points")
    ax.set_title(f"{labels.dataset(dataset)}: per-class {metric_label(metric)} gain of +Lossd")
    ax.legend(fontsize=8)
    return fig


def plot_metric_scatter(runs: pd.DataFrame, x: str = "mIoU", y: str = "mBIoU") -> Figure:
    """Every completed run as a point (``x``, ``y`` in percent): colour = loss, marker = model.

    One panel per dataset.

    Raises:
        InvalidOptionError: If no completed run has both metrics.
    """
    labels = Labels.from_runs(runs)
    done = completed_runs(runs)
    if len(done):
        done = done[done[x].notna() & done[y].notna()]
    if done.empty:
        raise InvalidOptionError(f"no completed run with both {x} and {y} to plot")
    datasets = ordered_datasets(done["dataset"])
    losses = ordered_losses(done["loss"])
    models = ordered_models(done["model"])
    colours = loss_colours(losses)
    markers = dict(zip(models, _MARKERS * (len(models) // len(_MARKERS) + 1), strict=False))
    fig = Figure(figsize=(4.2 * len(datasets), 4.0), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        part = done[done["dataset"] == dataset]
        for (model, loss), group in part.groupby(["model", "loss"]):
            ax.scatter(
                100 * group[x],
                100 * group[y],
                c=[colours[loss]] * len(group),
                marker=markers[model],
                s=36,
                edgecolors="0.2",
                linewidths=0.5,
            )
        ax.set_xlabel(f"{metric_label(x)} (%)")
        ax.set_ylabel(f"{metric_label(y)} (%)")
        ax.set_title(labels.dataset(dataset))
        ax.grid(alpha=0.3)
    handles = [Patch(color=colours[loss], label=labels.loss(loss)) for loss in losses]
    handles += [
        axes[0].scatter(
            [], [], marker=markers[m], c="white", edgecolors="0.2", label=labels.model(m)
        )
        for m in models
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    return fig


def error_histograms(runs: pd.DataFrame) -> pd.DataFrame:
    """Over/under-segmentation histograms of the runs, summed over the evaluated classes.

    Returns:
        Columns ``dataset, model, loss, kind`` (``fp_distance_hist`` or ``fn_depth_hist``),
        ``bin`` (distance label, e.g. ``"2-3"``), ``pixels`` (mean over the runs of the cell),
        ``fraction`` (of the cell's wrong pixels of that kind) and ``runs``; empty when no run
        has histograms (train with ``metrics.diagnostics=true``).
    """
    columns = ["dataset", "model", "loss", "kind", "bin", "pixels", "fraction", "runs"]
    rows = []
    done = completed_runs(runs)
    for _, run in done.iterrows():
        bins = run.get("diagnostic_bins")
        for kind in ERROR_KINDS:
            hist = run.get(kind)
            if not isinstance(hist, list) or not isinstance(bins, list):
                continue
            classes = run["eval_classes"] or range(len(hist))
            counts = np.asarray([hist[c] for c in classes], dtype=float).sum(axis=0)
            for label, count in zip(bins, counts, strict=True):
                rows.append((run["dataset"], run["model"], run["loss"], kind, label, count))
    if not rows:
        return pd.DataFrame(columns=columns)
    raw = pd.DataFrame(rows, columns=["dataset", "model", "loss", "kind", "bin", "count"])
    keys = ["dataset", "model", "loss", "kind"]
    bin_order = {label: i for i, label in enumerate(dict.fromkeys(raw["bin"]))}
    out = (
        raw.groupby([*keys, "bin"], sort=False)["count"]
        .agg(pixels="mean", runs="size")
        .reset_index()
    )
    totals = out.groupby(keys)["pixels"].transform("sum")
    out["fraction"] = out["pixels"].div(totals).where(totals > 0, math.nan)
    out["_bin"] = out["bin"].map(bin_order)
    out = out.sort_values([*keys, "_bin"], kind="stable").drop(columns="_bin")
    return out[columns].reset_index(drop=True)


def plot_error_histograms(histograms: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Bars per distance bin, one colour per loss: a row per model, a column per error kind.

    Args:
        histograms: Frame of :func:`error_histograms`.
        dataset: Dataset to show (default: the first one present).

    Raises:
        InvalidOptionError: If there are no histograms (for ``dataset``).
    """
    labels = Labels.from_runs(histograms)
    if histograms.empty:
        raise InvalidOptionError(
            "no over/under-segmentation histograms in these runs; train them with "
            "metrics.diagnostics=true"
        )
    dataset = dataset or ordered_datasets(histograms["dataset"])[0]
    part = histograms[histograms["dataset"] == dataset]
    if part.empty:
        raise InvalidOptionError(
            f"no histograms for dataset '{dataset}'; present: {sorted(set(histograms['dataset']))}"
        )
    models = ordered_models(part["model"])
    losses = ordered_losses(part["loss"])
    colours = loss_colours(losses)
    kinds = [k for k in ERROR_KINDS if k in set(part["kind"])]
    fig = Figure(figsize=(5.0 * len(kinds), 2.6 * len(models) + 0.6), layout="constrained")
    axes = fig.subplots(len(models), len(kinds), squeeze=False)
    width = 0.8 / len(losses)
    for row, model in enumerate(models):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            cell = part[(part["model"] == model) & (part["kind"] == kind)]
            bins = list(dict.fromkeys(cell["bin"]))
            x = np.arange(len(bins))
            for i, loss in enumerate(losses):
                values = cell[cell["loss"] == loss].set_index("bin")["pixels"].reindex(bins)
                ax.bar(
                    x + (i - (len(losses) - 1) / 2) * width,
                    values.to_numpy(float),
                    width,
                    color=colours[loss],
                    label=labels.loss(loss),
                )
            ax.set_xticks(x, bins)
            ax.set_xlabel("distance (px)")
            ax.set_ylabel("pixels per run")
            ax.set_title(f"{labels.model(model)}: {ERROR_KINDS[kind]}", fontsize=8)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{labels.dataset(dataset)}: where the wrong pixels lie")
    return fig


@dataclass(frozen=True)
class Example:
    """One validation image with its truth and a run's prediction.

    Args:
        name: Sample name (file stem).
        image: ``H×W×3`` uint8 RGB.
        target: ``H×W`` uint8 class indices (255 = ignore).
        prediction: ``H×W`` uint8 predicted class indices.
    """

    name: str
    image: np.ndarray
    target: np.ndarray
    prediction: np.ndarray


def _record_of(run: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(run, str | Path):
        return read_record(run)
    if "config" in run:
        return dict(run)
    return read_record(str(run["path"]))


def _rooted(value: Any, base_dir: Path) -> Any:
    path = Path(str(value))
    return value if path.is_absolute() else str(base_dir / path)


def predict_examples(
    run: Mapping[str, Any] | str | Path,
    num_images: int = 4,
    base_dir: str | Path | None = None,
    device: str = "cpu",
) -> list[Example]:
    """Predict the first ``num_images`` validation images with a run's best checkpoint.

    The network comes from ``<output_dir>/checkpoints/best.ckpt``
    (:func:`lossd.engine.model_io.load_model_from_checkpoint`), the validation set from the
    training config stored with it.

    Args:
        run: A row of :func:`lossd.results.load_runs`, a record dict, or a record path.
        num_images: How many images.
        base_dir: Folder that the record's relative ``output_dir`` and the relative dataset
            paths of its config are relative to (where the run was launched; default the
            current folder).
        device: Torch device.

    Raises:
        CheckpointError: If the run has no readable best checkpoint.
        DatasetNotFoundError: If the run's validation data is not on this machine.
    """
    import torch

    from lossd.data.transforms import denormalize
    from lossd.engine.config import build
    from lossd.engine.model_io import load_model_from_checkpoint
    from lossd.errors import CheckpointError

    record = _record_of(run)
    if not record.get("output_dir"):
        raise CheckpointError(f"run record '{record.get('path')}' names no output_dir")
    base = Path(base_dir) if base_dir else Path.cwd()
    checkpoint = Path(_rooted(record["output_dir"], base)) / "checkpoints" / "best.ckpt"
    model, meta = load_model_from_checkpoint(checkpoint, device)
    val_cfg = dict(meta.config["dataset"]["val"])
    val_cfg["root"] = _rooted(val_cfg["root"], base)
    dataset = build(val_cfg)
    examples = []
    with torch.no_grad():
        for index in range(min(num_images, len(dataset))):
            sample = dataset[index]
            logits = model(sample["image"].unsqueeze(0).to(device))
            examples.append(
                Example(
                    name=str(sample["name"]),
                    image=denormalize(sample["image"], getattr(dataset, "transform", None)),
                    target=sample["mask"].numpy().astype(np.uint8),
                    prediction=logits.argmax(dim=1)[0].cpu().numpy().astype(np.uint8),
                )
            )
    return examples


def plot_examples(
    examples: Sequence[Example] | Mapping[str, Sequence[Example]],
    class_names: Sequence[str],
    palette: Sequence[tuple[int, int, int]],
    title: str = "",
) -> Figure:
    """One row per image: the image, the truth, then each prediction, with a class legend.

    Args:
        examples: Examples of one run (one prediction column), or a mapping label -> examples
            of several runs on the same images (one column per label, e.g. base and +Lossd).
        class_names: Class names in index order.
        palette: One RGB triple per class.
        title: Figure title.

    Raises:
        InvalidOptionError: If there are no examples, the runs' images differ, or names and
            palette differ in length.
    """
    columns = dict(examples) if isinstance(examples, Mapping) else {"prediction": examples}
    first = next(iter(columns.values()), [])
    if not first:
        raise InvalidOptionError("no examples to plot (predict_examples returned none)")
    for label, items in columns.items():
        if [e.name for e in items] != [e.name for e in first]:
            raise InvalidOptionError(
                f"examples of '{label}' show {[e.name for e in items]}, expected the same images "
                f"as the first column {[e.name for e in first]}"
            )
    if len(class_names) != len(palette):
        raise InvalidOptionError(
            f"{len(class_names)} class names but {len(palette)} palette colours; expected equal"
        )
    width = 2 + len(columns)
    fig = Figure(figsize=(3.0 * width, 3.0 * len(first) + 0.8), layout="constrained")
    axes = fig.subplots(len(first), width, squeeze=False)
    for index, row in enumerate(axes):
        example = first[index]
        panels = [(example.name, example.image), ("truth", colorize(example.target, palette))]
        panels += [
            (label, colorize(items[index].prediction, palette)) for label, items in columns.items()
        ]
        for ax, (label, picture) in zip(row, panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.set_axis_off()
    handles = [
        Patch(facecolor=(r / 255.0, g / 255.0, b / 255.0), edgecolor="0.3", label=name)
        for name, (r, g, b) in zip(class_names, palette, strict=True)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
