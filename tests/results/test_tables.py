"""Tables from hand-written run records, checked cell by cell against hand-computed values.

The record set (``write_runs``) is shared with test_plots.py and test_notebook.py:

- LoveDA UNetFormer base, seeds 0-2: mIoU 50, 52, 54 -> 52.00 ± 2.00 (sample std);
  +Lossd seeds 0-2: 53, 56, 56 -> 55.00 ± 1.73 (var = (4 + 1 + 1) / 2 = 3); a failed +Lossd
  seed 3 (mIoU 99) that must not count; +RMI seed 0 only: 51.
- LoveDA SFA-Net +Lossd seed 0 only (n = 1, no std, no base).
- Potsdam ABCNet base seed 0 only (clutter outside the evaluated classes).
"""

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.results import (
    load_reference,
    load_runs,
    load_wandb_runs,
    loss_table,
    main_table,
    per_class_table,
    record_dir,
    summarize,
    write_record,
    write_tables,
)
from lossd.results.tables import format_delta, format_mean_std, latex_escape

ROOT = Path(__file__).resolve().parents[2]
LOVEDA = ["background", "building", "road", "water", "barren", "forest", "agriculture"]
POTSDAM = ["impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter"]

REFERENCE_CSV = """dataset,model,loss,metric,value,origin,source,note,detail
loveda,sfanet,lossd,mIoU,55.8,lossd_paper,Ma 2026,unverified,model not named
loveda,sfanet,base,mIoU,54.2,lossd_paper,Ma 2026,implied,55.8 - 1.6
loveda,unetformer,base,mIoU,52.4,model_paper,Wang 2022,verified,abstract
loveda,unetformer,base,IoU/building,58.8,model_paper,quote,third-party,Table 6
potsdam,abcnet,base,mF1,92.7,model_paper,Li 2021,unverified,recalled
"""


def _record(
    dataset,
    model,
    loss,
    seed,
    miou,
    mf1,
    mbiou,
    building=0.5,
    status="completed",
    split="test",
    **kw,
):
    """A run record whose reported metrics come from ``split`` (its test block, or validation)."""
    names = LOVEDA if dataset == "loveda" else POTSDAM
    iou = [0.5] * len(names)
    iou[1] = building
    if dataset == "potsdam":
        iou[-1] = math.nan
    record = {
        "dataset": dataset,
        "model": model,
        "loss": loss,
        "seed": seed,
        "experiment": "hand",
        "protocol": "original",
        "status": status,
        "finished_at": f"2026-01-0{seed + 1}T00:00:00+00:00",
        "metrics": {
            "mIoU": miou,
            "mF1": mf1,
            "OA": 0.9,
            "mBIoU": mbiou,
            "IoU": iou,
            "F1": [0.6] * len(names),
            "BIoU": [0.3] * len(names),
            **kw,
        },
        "class_names": names,
        "eval_classes": list(range(len(names) if dataset == "loveda" else 5)),
    }
    if split == "test":
        # the test block holds the numbers the tables must show; the validation metrics are
        # set apart (halved), so a table reading the wrong block shows other numbers
        record["test"] = {"split": "test", "checkpoint": "best", "metrics": record["metrics"]}
        record["metrics"] = {
            k: ([v / 2 for v in value] if isinstance(value, list) else value / 2)
            for k, value in record["metrics"].items()
            if k in ("mIoU", "mF1", "OA", "mBIoU", "IoU", "F1", "BIoU")
        }
    return record


RECORDS = [
    _record("loveda", "unetformer", "base", 0, 0.50, 0.60, 0.30, building=0.40),
    _record("loveda", "unetformer", "base", 1, 0.52, 0.62, 0.32, building=0.44),
    _record("loveda", "unetformer", "base", 2, 0.54, 0.64, 0.34, building=0.48),
    _record("loveda", "unetformer", "lossd", 0, 0.53, 0.63, 0.33, building=0.50),
    _record("loveda", "unetformer", "lossd", 1, 0.56, 0.66, 0.36, building=0.50),
    _record("loveda", "unetformer", "lossd", 2, 0.56, 0.66, 0.36, building=0.53),
    _record("loveda", "unetformer", "lossd", 3, 0.99, 0.99, 0.99, status="failed"),
    _record("loveda", "unetformer", "rmi", 0, 0.51, 0.61, 0.31),
    _record("loveda", "sfanet", "lossd", 0, 0.60, 0.70, 0.40),
    _record("potsdam", "abcnet", "base", 0, 0.70, 0.80, 0.40),
]


def write_runs(root: Path, records=RECORDS) -> Path:
    """Write ``records`` in the results layout under ``root``; returns ``root``."""
    for record in records:
        keys = (record["dataset"], record["model"], record["loss"], record["seed"])
        write_record(record_dir(root, *keys), record)
    return root


@pytest.fixture
def runs(tmp_path: Path) -> pd.DataFrame:
    return load_runs(write_runs(tmp_path / "runs"))


@pytest.fixture
def reference(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "reference.csv"
    path.write_text(REFERENCE_CSV)
    return load_reference(path)


def _rows(markdown: str) -> list[list[str]]:
    """Body cells of the Markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


# --- loading and aggregation ------------------------------------------------------------------


def test_load_runs_one_row_per_record_with_per_class_columns(runs: pd.DataFrame) -> None:
    assert len(runs) == 10
    assert list(runs.columns[:4]) == ["dataset", "model", "loss", "seed"]
    row = runs[(runs["loss"] == "base") & (runs["seed"] == 1) & (runs["dataset"] == "loveda")]
    assert row["mIoU"].item() == 0.52 and row["IoU/building"].item() == 0.44
    assert row["IoU/agriculture"].item() == 0.5 and math.isnan(row["IoU/clutter"].item())
    assert row["class_names"].item() == LOVEDA and row["eval_classes"].item() == list(range(7))
    potsdam = runs[runs["dataset"] == "potsdam"].iloc[0]
    assert math.isnan(potsdam["IoU/clutter"]) and potsdam["eval_classes"] == [0, 1, 2, 3, 4]
    assert sorted(runs["status"]) == ["completed"] * 9 + ["failed"]
    assert potsdam["fp_distance_hist"] is None


def test_summarize_mean_sample_std_and_n_over_completed_seeds(runs: pd.DataFrame) -> None:
    summary = summarize(runs, metrics=["mIoU", "IoU/building"]).set_index(
        ["dataset", "model", "loss"]
    )
    base = summary.loc[("loveda", "unetformer", "base")]
    assert base["mIoU"] == pytest.approx(52.0) and base["mIoU_std"] == pytest.approx(2.0)
    assert base["n"] == 3 and base["seeds"] == [0, 1, 2] and base["mIoU_n"] == 3
    lossd = summary.loc[("loveda", "unetformer", "lossd")]  # the failed seed 3 is left out
    assert lossd["mIoU"] == pytest.approx(55.0) and lossd["mIoU_std"] == pytest.approx(math.sqrt(3))
    assert lossd["n"] == 3 and lossd["IoU/building"] == pytest.approx(51.0)
    single = summary.loc[("loveda", "sfanet", "lossd")]
    assert single["n"] == 1 and single["mIoU"] == pytest.approx(60.0)
    assert math.isnan(single["mIoU_std"])


def test_duplicate_records_keep_the_completed_then_newest(tmp_path: Path, caplog) -> None:
    older = _record("loveda", "fcn", "base", 0, 0.40, 0.5, 0.2)
    newer = {**_record("loveda", "fcn", "base", 0, 0.45, 0.5, 0.2), "finished_at": "2027-01-01"}
    failed = {
        **_record("loveda", "fcn", "base", 0, 0.10, 0.1, 0.1, status="failed"),
        "finished_at": "2028-01-01",
    }
    write_record(tmp_path / "a" / "metrics.json", older)
    write_record(tmp_path / "b" / "metrics.json", newer)
    write_record(tmp_path / "c" / "metrics.json", failed)
    runs = load_runs(tmp_path)
    assert len(runs) == 1 and runs["mIoU"].item() == 0.45
    assert runs["path"].item() == str(tmp_path / "b" / "metrics.json")
    assert sum("ignored" in r.message for r in caplog.records) == 2
    assert len(load_runs(tmp_path, dedupe=False)) == 3


def test_load_runs_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing-here.*experiment=synthetic_grid"):
        load_runs(tmp_path / "nothing-here")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metrics.json").write_text("{")
    with pytest.raises(DataFormatError, match=r"x/metrics.json' is not valid JSON"):
        load_runs(tmp_path)


def test_empty_folder_gives_an_empty_frame_and_write_tables_refuses(tmp_path: Path) -> None:
    runs = load_runs(tmp_path)
    assert runs.empty and {"dataset", "mIoU", "status"} <= set(runs.columns)
    with pytest.raises(InvalidOptionError, match="no completed run record"):
        write_tables(runs, tmp_path / "tables")


# --- formatting -------------------------------------------------------------------------------


def test_cell_formatting() -> None:
    assert format_mean_std(52.0, 2.0, 3) == "52.00 ± 2.00"
    assert format_mean_std(60.0, math.nan, 1) == "60.00"
    assert format_mean_std(60.0, 5.0, 1) == "60.00"
    assert format_mean_std(math.nan, math.nan, 0) == "—"
    assert format_delta(3.0) == "+3.00" and format_delta(-1.004) == "-1.00"
    assert format_delta(-0.001) == "+0.00" and format_delta(math.nan) == "—"
    assert latex_escape("a_b & 5% ± — Δ Lovász") == r"a\_b \& 5\% $\pm$ --- $\Delta$ Lov\'asz"


# --- the tables -------------------------------------------------------------------------------


MAIN_ROWS = [
    [
        "LoveDA",
        "UNetFormer",
        "mIoU",
        "test",
        "original",
        "52.00 ± 2.00",
        "55.00 ± 1.73",
        "+3.00",
        "3/3",
        "—",
        "—",
        "52.4",
    ],
    ["LoveDA", "ABCNet", "mIoU", "—", "—", "—", "—", "—", "0/0", "—", "—", "—"],
    [
        "LoveDA",
        "SFA-Net",
        "mIoU",
        "test",
        "original",
        "—",
        "60.00",
        "—",
        "0/1",
        "54.2*",
        "55.8*",
        "—",
    ],
    ["Potsdam", "UNetFormer", "mF1", "—", "—", "—", "—", "—", "0/0", "—", "—", "—"],
    ["Potsdam", "ABCNet", "mF1", "test", "original", "80.00", "—", "—", "1/0", "—", "—", "92.7*"],
    ["Potsdam", "SFA-Net", "mF1", "—", "—", "—", "—", "—", "0/0", "—", "—", "—"],
]
# these records have no per-image counts: every Δ [95 % CI] cell is "—"
MAIN_ROWS = [[*row[:8], "—", *row[8:]] for row in MAIN_ROWS]


def test_main_table_cell_by_cell(runs: pd.DataFrame, reference: pd.DataFrame) -> None:
    table = main_table(runs, reference)
    assert table.name == "main"
    assert list(table.display.columns) == [
        "Dataset",
        "Model",
        "Metric",
        "Split",
        "Protocol",
        "Base",
        "+Lossd",
        "Δ",
        "Δ [95 % CI]",
        "n",
        "Paper base",
        "Paper +Lossd",
        "Published base",
    ]
    assert table.display.values.tolist() == MAIN_ROWS
    assert _rows(table.to_markdown()) == MAIN_ROWS
    data = table.data.set_index(["dataset", "model"])
    cell = data.loc[("loveda", "unetformer")]
    assert cell["base_std"] == pytest.approx(2.0) and cell["lossd_std"] == pytest.approx(
        math.sqrt(3)
    )
    assert (cell["base_n"], cell["lossd_n"], cell["delta"]) == (3, 3, pytest.approx(3.0))
    assert math.isnan(data.loc[("loveda", "sfanet"), "delta"])
    assert data.loc[("loveda", "sfanet"), "paper_lossd"] == 55.8


def test_published_values_stand_only_beside_test_numbers(
    tmp_path: Path, reference: pd.DataFrame
) -> None:
    val_only = [
        _record("loveda", "unetformer", "base", 0, 0.50, 0.60, 0.30, split="val"),
        _record("loveda", "sfanet", "lossd", 0, 0.60, 0.70, 0.40, split="val"),
        _record("loveda", "sfanet", "base", 0, 0.58, 0.70, 0.40, split="test"),
    ]
    runs = load_runs(write_runs(tmp_path / "val_runs", val_only))
    assert sorted(runs["split"]) == ["test", "val", "val"]
    rows = {row[1]: row for row in main_table(runs, reference).display.values.tolist()}
    # validation numbers: no published value beside them, though the reference has one
    assert rows["UNetFormer"][3:6] == ["val", "original", "50.00"]
    assert rows["UNetFormer"][-1] == "—"
    # a cell mixing splits says so and shows no published value either
    assert rows["SFA-Net"][3] == "test+val" and rows["SFA-Net"][-3:-1] == ["—", "—"]


def test_main_table_for_one_metric_and_without_reference(runs: pd.DataFrame) -> None:
    table = main_table(runs, metric="mBIoU", datasets=["loveda"], models=["unetformer", "fcn"])
    assert table.name == "main_mBIoU"
    assert table.display.values.tolist() == [
        [
            "LoveDA",
            "UNetFormer",
            "mBIoU",
            "test",
            "original",
            "32.00 ± 2.00",
            "35.00 ± 1.73",
            "+3.00",
            "—",  # no per-image counts: no interval
            "3/3",
            "—",
            "—",
            "—",
        ],
        ["LoveDA", "FCN-8s", "mBIoU", "—", "—", "—", "—", "—", "—", "0/0", "—", "—", "—"],
    ]


def test_main_table_latex_and_csv(
    runs: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path
) -> None:
    table = main_table(runs, reference)
    latex = table.to_latex().splitlines()
    assert latex[latex.index("\\toprule") - 1] == "\\begin{tabular}{lllrrrrrrrrrr}"
    assert latex[latex.index("\\toprule") + 1].startswith(
        "Dataset & Model & Metric & Split & Protocol & Base"
    )
    assert (
        "LoveDA & UNetFormer & mIoU & test & original & 52.00 $\\pm$ 2.00 & 55.00 $\\pm$ 1.73 & "
        "+3.00 & --- & 3/3 & --- & --- & 52.4 \\\\" in latex
    )
    assert (
        "LoveDA & SFA-Net & mIoU & test & original & --- & 60.00 & --- & --- & 0/1 & 54.2* & "
        "55.8* & --- \\\\" in latex
    )
    assert latex.count("\\midrule") == 1 and "\\bottomrule" in latex
    paths = table.write(tmp_path / "tables")
    assert [p.name for p in paths] == ["main.md", "main.tex", "main.csv"]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "main.csv",
        "main.md",
        "main.tex",
    ]
    csv = pd.read_csv(tmp_path / "tables" / "main.csv")
    first = csv.iloc[0]
    assert (first["dataset"], first["model"], first["metric"]) == ("loveda", "unetformer", "mIoU")
    assert first["base"] == pytest.approx(52.0) and first["lossd_std"] == pytest.approx(1.7321)
    assert first["published_base"] == 52.4 and math.isnan(first["paper_base"])
    sfanet = csv.iloc[2]
    assert sfanet["base_n"] == 0 and math.isnan(sfanet["base"]) and sfanet["lossd"] == 60.0
    assert (tmp_path / "tables" / "main.md").read_text() == table.to_markdown()


def test_per_class_table(runs: pd.DataFrame, reference: pd.DataFrame) -> None:
    table = per_class_table(runs, "loveda", "IoU", reference)
    assert table.name == "per_class_loveda_IoU"
    rows = table.display.values.tolist()
    assert len(rows) == 2 * 7  # UNetFormer and SFA-Net (+Lossd only) × 7 classes
    assert rows[0] == [
        "UNetFormer",
        "background",
        "50.00 ± 0.00",
        "50.00 ± 0.00",
        "+0.00",
        "3/3",
        "—",
    ]
    assert rows[1] == [
        "UNetFormer",
        "building",
        "44.00 ± 4.00",
        "51.00 ± 1.73",
        "+7.00",
        "3/3",
        "58.8*",
    ]
    assert rows[8] == ["SFA-Net", "building", "—", "50.00", "—", "0/1", "—"]
    potsdam = per_class_table(runs, "potsdam", "IoU").display.values.tolist()
    assert potsdam[-1] == ["ABCNet", "clutter *", "—", "—", "—", "0/0", "—"]
    assert potsdam[1] == ["ABCNet", "building", "50.00", "—", "—", "1/0", "—"]
    with pytest.raises(InvalidOptionError, match=r"dataset 'uavid'.*\['loveda', 'potsdam'\]"):
        per_class_table(runs, "uavid")


def test_loss_table(runs: pd.DataFrame) -> None:
    table = loss_table(runs)
    assert list(table.display.columns) == [
        "Dataset",
        "Model",
        "Loss",
        "n",
        "mIoU",
        "Δ mIoU",
        "mF1",
        "Δ mF1",
        "mBIoU",
        "Δ mBIoU",
        "mBF",
        "Δ mBF",
    ]
    # mBF: these records predate the Boundary F-score, so its cells are "—"
    assert table.display.values.tolist() == [
        [
            "LoveDA",
            "UNetFormer",
            "base",
            "3",
            "52.00 ± 2.00",
            "",
            "62.00 ± 2.00",
            "",
            "32.00 ± 2.00",
            "",
            "—",
            "",
        ],
        [
            "LoveDA",
            "UNetFormer",
            "+Lossd",
            "3",
            "55.00 ± 1.73",
            "+3.00",
            "65.00 ± 1.73",
            "+3.00",
            "35.00 ± 1.73",
            "+3.00",
            "—",
            "—",
        ],
        [
            "LoveDA",
            "UNetFormer",
            "+RMI",
            "1",
            "51.00",
            "-1.00",
            "61.00",
            "-1.00",
            "31.00",
            "-1.00",
            "—",
            "—",
        ],
        ["LoveDA", "SFA-Net", "+Lossd", "1", "60.00", "—", "70.00", "—", "40.00", "—", "—", "—"],
        ["Potsdam", "ABCNet", "base", "1", "70.00", "", "80.00", "", "40.00", "", "—", ""],
    ]


def test_write_tables_writes_every_table(
    runs: pd.DataFrame, reference: pd.DataFrame, tmp_path: Path
) -> None:
    # no record holds mBF (records written before the BF score): no BF table, no BF column
    written = write_tables(runs, tmp_path / "t", reference)
    stems = sorted({p.stem for p in written})
    assert stems == sorted(
        ["main", "main_mIoU", "main_mF1", "main_OA", "main_mBIoU", "losses"]
        + [f"per_class_{d}_{m}" for d in ("loveda", "potsdam") for m in ("IoU", "F1", "BIoU")]
    )
    assert len(written) == 3 * len(stems) and all(p.is_file() for p in written)
    assert not [p for p in (tmp_path / "t").iterdir() if p.name.startswith(".")]  # no temp files
    assert "mBF" not in (tmp_path / "t" / "losses.md").read_text()
    no_other_losses = runs[runs["loss"] != "rmi"]
    assert "losses" not in {p.stem for p in write_tables(no_other_losses, tmp_path / "u")}


def test_a_metric_one_record_holds_gets_its_tables_and_columns(tmp_path: Path) -> None:
    with_bf = _record("loveda", "unetformer", "rmi", 0, 0.51, 0.61, 0.31, mBF=0.25, BF=[0.2] * 7)
    records = [r for r in RECORDS if r["loss"] != "rmi"] + [with_bf]
    runs = load_runs(write_runs(tmp_path / "runs", records))
    stems = {p.stem for p in write_tables(runs, tmp_path / "t")}
    assert {"main_mBF", "per_class_loveda_BF", "per_class_potsdam_BF"} <= stems
    losses = _rows((tmp_path / "t" / "losses.md").read_text())
    rmi = next(row for row in losses if row[2] == "+RMI")
    assert rmi[-2:] == ["25.00", "—"]  # its mBF, and no base run with mBF to subtract


# --- the reference file -----------------------------------------------------------------------


def test_repository_reference_file() -> None:
    ref = load_reference(ROOT / "results" / "paper_reference.csv")
    key = ref.set_index(["dataset", "model", "loss", "metric", "origin"])
    for dataset, metric, value, base in (
        ("loveda", "mIoU", 55.8, 54.2),
        ("uavid", "mIoU", 70.8, 70.0),
        ("potsdam", "mF1", 94.1, 93.4),
    ):
        row = key.loc[(dataset, "sfanet", "lossd", metric, "lossd_paper")]
        assert row["value"] == value and row["note"] == "unverified"
        assert "does not name the model" in row["detail"]
        implied = key.loc[(dataset, "sfanet", "base", metric, "lossd_paper")]
        assert implied["value"] == base and implied["note"] == "implied"
    assert key.loc[("loveda", "unetformer", "base", "mIoU", "model_paper"), "value"] == 52.4
    assert key.loc[("uavid", "unetformer", "base", "mIoU", "model_paper"), "note"] == "verified"
    assert key.loc[("uavid", "abcnet", "base", "mIoU", "model_paper"), "value"] == 63.8
    assert key.loc[("loveda", "fcn", "base", "mIoU", "model_paper"), "value"] == 46.7
    assert key.loc[("potsdam", "sfanet", "base", "mF1", "model_paper"), "note"] == "third-party"
    assert ref["source"].str.len().min() > 5
    classes = {"loveda": LOVEDA, "uavid": None, "potsdam": POTSDAM}
    for _, row in ref[ref["metric"].str.contains("/")].iterrows():
        if classes[row["dataset"]] is not None:
            assert row["metric"].split("/")[1] in classes[row["dataset"]], row["metric"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("note,", "remark,"), r"lacks column\(s\) \['note'\]"),
        (lambda t: t.replace("55.8", "n/a"), r"line 2: value 'n/a' is not a number"),
        (lambda t: t.replace("implied", "guessed"), r"note \['guessed'\] not one of"),
        (lambda t: t + "loveda,sfanet,lossd,mIoU,1,lossd_paper,x,verified,y\n", "more than once"),
    ],
)
def test_reference_file_errors(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "ref.csv"
    path.write_text(edit(REFERENCE_CSV))
    with pytest.raises(DataFormatError, match=message) as info:
        load_reference(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"absent\.csv"):
        load_reference(tmp_path / "absent.csv")


# --- the CLI and W&B ----------------------------------------------------------------------------


def _make_tables():
    spec = importlib.util.spec_from_file_location(
        "make_tables", ROOT / "scripts" / "make_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_tables_cli(tmp_path: Path, capsys) -> None:
    root = write_runs(tmp_path / "runs")
    ref = tmp_path / "ref.csv"
    ref.write_text(REFERENCE_CSV)
    _make_tables().main(
        ["--runs", str(root), "--out", str(tmp_path / "out"), "--reference", str(ref)]
    )
    out = capsys.readouterr().out
    assert "9 completed runs (1 others) -> 36 files" in out
    assert _rows((tmp_path / "out" / "main.md").read_text()) == MAIN_ROWS
    with pytest.raises(SystemExit, match="error: no completed run record"):
        _make_tables().main(
            ["--runs", str(root), "--out", str(tmp_path / "o2"), "--experiment", "other"]
        )
    with pytest.raises(SystemExit, match=r"error: run folder '.*missing' not found"):
        _make_tables().main(["--runs", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])


class FakeRun:
    def __init__(self, config, summary, state="finished", run_id="r1"):
        self.config = config
        self.summary_metrics = summary
        self.state = state
        self.path = ["team", "lossd", run_id]
        self.created_at = "2026-01-01T00:00:00Z"


class FakeApi:
    def __init__(self, runs):
        self._runs = runs
        self.asked = []

    def runs(self, path):
        self.asked.append(path)
        return iter(self._runs)


def _wandb_runs():
    def config(dataset, model, loss, seed):
        return {
            "dataset": {"name": dataset, "eval_classes": list(range(7))},
            "model": {"name": model},
            "loss": {"name": loss},
            "seed": seed,
            "experiment_name": "paper",
        }

    def summary(miou, building=None):
        values = {
            "best/mIoU": miou,
            "best/mF1": miou + 0.1,
            "best/OA": 0.9,
            "best/mBIoU": miou - 0.2,
            "val/mIoU": 0.0,
            "_runtime": 12.5,
            "epoch": 30,
        }
        if building is not None:
            values["best/IoU/building"] = building
        return values

    return [
        FakeRun(config("loveda", "unetformer", "base", 0), summary(0.50, 0.40), run_id="a"),
        FakeRun(config("loveda", "unetformer", "base", 1), summary(0.54, 0.48), run_id="b"),
        FakeRun(config("loveda", "unetformer", "lossd", 0), summary(0.56), run_id="c"),
        FakeRun(
            config("loveda", "unetformer", "lossd", 1), summary(0.1), state="crashed", run_id="d"
        ),
        FakeRun({"lr": 0.1}, {"acc": 1.0}, run_id="other"),  # not a lossd run: skipped
    ]


def test_wandb_runs_become_the_same_frame(tmp_path: Path) -> None:
    api = FakeApi(_wandb_runs())
    runs = load_wandb_runs("team/lossd", api=api)
    assert api.asked == ["team/lossd"]
    assert len(runs) == 4
    first = runs.iloc[0]
    assert (first["dataset"], first["model"], first["loss"], first["seed"]) == (
        "loveda",
        "unetformer",
        "base",
        0,
    )
    assert first["mIoU"] == 0.50 and first["mF1"] == pytest.approx(0.60)
    assert first["IoU/building"] == 0.40 and math.isnan(first["IoU/road"])
    assert first["status"] == "completed" and first["path"] == "wandb:team/lossd/a"
    assert first["experiment"] == "paper" and first["wall_time_s"] == 12.5
    assert first["class_names"] == LOVEDA
    assert sorted(runs["status"]) == ["completed"] * 3 + ["failed"]
    table = main_table(runs)
    assert table.display.values.tolist() == [
        [
            *("LoveDA", "UNetFormer", "mIoU", "val", "—", "52.00 ± 2.83"),
            *("56.00", "+4.00", "—", "2/1", "—", "—", "—"),
        ],
    ]
    # The per-class table reads best/IoU/<class> where the runs have it.
    building = per_class_table(runs, "loveda").display.values.tolist()[1]
    assert building == ["UNetFormer", "building", "44.00 ± 5.66", "—", "—", "2/0", "—"]


def test_wandb_errors(monkeypatch) -> None:
    with pytest.raises(InvalidOptionError, match="ENTITY/PROJECT"):
        load_wandb_runs("lossd", api=FakeApi([]))

    class CommError(Exception):
        pass

    CommError.__module__ = "wandb.errors"

    class BrokenApi:
        def runs(self, path):
            raise CommError("could not reach api.wandb.ai")

    with pytest.raises(ConnectionError, match=r"cannot read W&B project 'team/lossd'.*wandb login"):
        load_wandb_runs("team/lossd", api=BrokenApi())


def test_make_tables_cli_reads_wandb_through_wandb_api(tmp_path: Path, monkeypatch, capsys) -> None:
    import wandb

    api = FakeApi(_wandb_runs())
    monkeypatch.setattr(wandb, "Api", lambda **kwargs: api)
    _make_tables().main(
        ["--wandb", "team/lossd", "--out", str(tmp_path / "w"), "--reference", "none"]
    )
    assert api.asked == ["team/lossd"]
    assert "3 completed runs (1 others)" in capsys.readouterr().out
    rows = _rows((tmp_path / "w" / "main.md").read_text())
    assert rows == [
        [
            *("LoveDA", "UNetFormer", "mIoU", "val", "—", "52.00 ± 2.83"),
            *("56.00", "+4.00", "—", "2/1", "—", "—", "—"),
        ]
    ]
