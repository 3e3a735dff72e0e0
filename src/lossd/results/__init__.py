"""Run records and table generation.

The tables, figures and W&B reader (pandas, matplotlib, wandb) are imported on first use, so
the training engine, which writes records, does not load them.
"""

from typing import TYPE_CHECKING, Any

from lossd.records import (
    RECORD_NAME,
    find_records,
    git_commit,
    package_versions,
    read_record,
    record_dir,
    write_record,
)

if TYPE_CHECKING:
    from lossd.results.comparisons import paired_lookup, paired_results
    from lossd.results.evidence import error_profiles, plot_error_profile, write_figures
    from lossd.results.plots import (
        error_histograms,
        plot_class_deltas,
        plot_error_histograms,
        plot_examples,
        plot_metric_scatter,
        predict_examples,
    )
    from lossd.results.runs import load_runs
    from lossd.results.tables import (
        Table,
        build_tables,
        load_reference,
        loss_table,
        main_table,
        paired_table,
        per_class_table,
        summarize,
        write_tables,
    )
    from lossd.results.wandb_runs import load_wandb_runs

_LAZY = {
    "load_runs": "lossd.results.runs",
    "load_wandb_runs": "lossd.results.wandb_runs",
    **dict.fromkeys(
        (
            "Table",
            "build_tables",
            "load_reference",
            "loss_table",
            "main_table",
            "paired_table",
            "per_class_table",
            "summarize",
            "write_tables",
        ),
        "lossd.results.tables",
    ),
    **dict.fromkeys(
        (
            "error_histograms",
            "plot_class_deltas",
            "plot_error_histograms",
            "plot_examples",
            "plot_metric_scatter",
            "predict_examples",
        ),
        "lossd.results.plots",
    ),
    **dict.fromkeys(("paired_lookup", "paired_results"), "lossd.results.comparisons"),
    **dict.fromkeys(
        ("error_profiles", "plot_error_profile", "write_figures"), "lossd.results.evidence"
    ),
}

__all__ = [
    "RECORD_NAME",
    "Table",
    "build_tables",
    "error_histograms",
    "error_profiles",
    "find_records",
    "git_commit",
    "load_reference",
    "load_runs",
    "load_wandb_runs",
    "loss_table",
    "main_table",
    "package_versions",
    "paired_lookup",
    "paired_results",
    "paired_table",
    "per_class_table",
    "plot_class_deltas",
    "plot_error_histograms",
    "plot_error_profile",
    "plot_examples",
    "plot_metric_scatter",
    "predict_examples",
    "read_record",
    "record_dir",
    "summarize",
    "write_figures",
    "write_record",
    "write_tables",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lossd.results' has no attribute {name!r}")
