"""docs/recipes.md: the training recipe of every paper cell, each value with its source line.

The paper grid (conf/experiment/paper.yaml) trains every dataset × model cell with the recipe of
the code behind the published numbers, ``conf/recipe/<dataset>_<model>.yaml``, chosen by
``optional recipe: ${dataset}_${model}`` in conf/train.yaml. Each recipe value carries a YAML
comment naming the original file and line it reproduces (GeoSeg, SFA-Net, catalyst). This module
composes each cell with Hydra's compose API, exactly as ``scripts/train.py`` does, and finds for
every value the YAML line that sets it last, following Hydra's own defaults list (the recipe and
the recipe it extends, the dataset, model, optimizer, scheduler and inference files), so the
document shows the value a run uses next to the comment that justifies it.

``scripts/make_recipes_doc.py`` writes the document; tests/test_recipes.py checks that the
committed docs/recipes.md equals :func:`recipes_markdown`.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from lossd.data import DATASET_NAMES, get_info
from lossd.engine.config import CONF_DIR, register_resolvers
from lossd.engine.evaluate import inference_options
from lossd.engine.inference import InferenceOptions
from lossd.io import atomic_path

__all__ = [
    "ROWS",
    "Cell",
    "Row",
    "Source",
    "compose_cell",
    "paper_cells",
    "recipes_markdown",
    "write_recipes_doc",
]

EXPERIMENT = "paper"
"""The experiment whose cells the document describes."""

_SKIPPED_GROUPS = ("hydra/", "schema/")
"""Defaults-list entries that are not YAML files of conf/ (Hydra's own, typed schemas)."""


@dataclass(frozen=True)
class Source:
    """The YAML line that sets a value, and its comment (the original line it reproduces).

    Attributes:
        path: The YAML file, relative to the config folder (``recipe/loveda_unetformer.yaml``).
        line: 1-based line of the key.
        comment: The key's inline comment, followed by a comment block right above it (if any).
    """

    path: str
    line: int
    comment: str

    def footnote(self) -> str:
        """``conf/<path>:<line>``: the comment."""
        where = f"`conf/{self.path}:{self.line}`"
        return f"{where}: {self.comment}" if self.comment else where


@dataclass(frozen=True)
class Cell:
    """One composed paper cell and where each of its values comes from.

    Attributes:
        dataset: Dataset name.
        model: Model name.
        cfg: The composed training config (``experiment=paper dataset=... model=...``).
        sources: Dotted key -> the :class:`Source` of the YAML line that sets it last.
    """

    dataset: str
    model: str
    cfg: DictConfig
    sources: dict[str, Source]

    def get(self, key: str) -> Any:
        """The resolved value at ``key`` (``None`` if absent), as plain Python."""
        value = OmegaConf.select(self.cfg, key, default=None)
        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
        return value


# --- YAML lines ---------------------------------------------------------------------------


def _comment_after(line: str, column: int) -> str:
    """The comment after ``column`` of ``line`` (our YAML holds no '#' inside values)."""
    rest = line[column:]
    return rest.split("#", 1)[1].strip() if "#" in rest else ""


def _comment_above(lines: Sequence[str], index: int, indent: int) -> str:
    """The comment block right above line ``index`` at the key's indentation (not the header)."""
    block: list[str] = []
    row = index - 1
    while row >= 0:
        text = lines[row]
        stripped = text.lstrip()
        if not stripped.startswith("#") or len(text) - len(stripped) != indent:
            break
        block.insert(0, stripped.lstrip("#").strip())
        row -= 1
    if row < 0:  # the block is the file's header: it describes the file, not this key
        return ""
    return " ".join(block)


def _leaves(node: yaml.Node, prefix: str, lines: Sequence[str]) -> Iterator[tuple[str, int, str]]:
    """``(dotted key, 1-based line, comment)`` of every non-mapping value of a mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if not prefix and key == "defaults":
            continue
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value_node, yaml.MappingNode):
            yield from _leaves(value_node, dotted, lines)
            continue
        end = value_node.end_mark
        inline = _comment_after(lines[end.line], end.column) if end.line < len(lines) else ""
        above = _comment_above(lines, key_node.start_mark.line, key_node.start_mark.column)
        comment = ". ".join(part.rstrip(".") for part in (inline, above) if part)
        yield dotted, key_node.start_mark.line + 1, comment + ("." if above else "")


def yaml_sources(path: Path, package: str, conf_dir: Path) -> dict[str, Source]:
    """The :class:`Source` of every value a config file sets, keyed by its full dotted key.

    Args:
        path: The YAML file.
        package: Where Hydra places the file's content (``""``: the root, ``"dataset"``, ...).
        conf_dir: The config folder (for the relative path in :attr:`Source.path`).
    """
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    lines = text.splitlines()
    relative = path.relative_to(conf_dir).as_posix()
    sources = {}
    for key, line, comment in _leaves(root, "", lines) if root is not None else ():
        full = f"{package}.{key}" if package else key
        sources[full] = Source(relative, line, comment)
    return sources


# --- composition ---------------------------------------------------------------------------


def _overrides(dataset: str, model: str) -> list[str]:
    return [f"experiment={EXPERIMENT}", f"dataset={dataset}", f"model={model}"]


def compose_cell(dataset: str, model: str, conf_dir: Path = CONF_DIR) -> Cell:
    """Compose one paper cell and find the YAML line behind each of its values.

    The files are taken in Hydra's merge order (its defaults list for these overrides), so the
    last file that sets a key is the one whose value the run uses.

    Args:
        dataset: Dataset name (``loveda``, ``uavid``, ``potsdam``).
        model: Model name (``unetformer``, ``abcnet``, ``fcn``, ``sfanet``).
        conf_dir: The config folder.
    """
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            overrides = _overrides(dataset, model)
            cfg = compose("train", overrides=overrides)
            loader = GlobalHydra.instance().config_loader()
            defaults = loader.compute_defaults_list("train", overrides, RunMode.RUN).defaults
    finally:
        GlobalHydra.instance().clear()
    sources: dict[str, Source] = {}
    for entry in defaults:
        config_path = str(entry.config_path)
        if config_path.startswith(_SKIPPED_GROUPS):
            continue
        path = conf_dir / f"{config_path}.yaml"
        if path.is_file():
            sources.update(yaml_sources(path, str(entry.package or ""), conf_dir))
    return Cell(dataset, model, cfg, sources)


def paper_cells(conf_dir: Path = CONF_DIR) -> tuple[list[str], list[str]]:
    """The datasets and models of the document: every dataset with a recipe for each model.

    The models are the paper grid's (its sweep in conf/experiment/paper.yaml); the datasets
    are those with ``conf/recipe/<dataset>_<model>.yaml`` for each of them, in the registry's
    table order: the paper grid's three first, then a dataset added with its recipes
    (Vaihingen, swept by conf/experiment/paper_vaihingen.yaml) without a change here.
    """
    params = OmegaConf.load(conf_dir / "experiment" / f"{EXPERIMENT}.yaml").hydra.sweeper.params
    models = str(params.model).split(",")
    recipes = conf_dir / "recipe"
    datasets = [
        name
        for name in DATASET_NAMES
        if all((recipes / f"{name}_{model}.yaml").is_file() for model in models)
    ]
    return datasets, models


# --- rows ------------------------------------------------------------------------------------

T = "dataset.train.transform."


def _number(value: Any) -> str:
    """A value as the recipes write it: ``yes``/``no``, ``6e-4`` rather than ``0.0006``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            mantissa, exponent = f"{value:.1e}".split("e")
            return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
        return f"{value:g}"
    return str(value)


def _numbers(values: Sequence[Any]) -> str:
    return ", ".join(_number(v) for v in values)


def _splits(value: Any) -> str:
    return "+".join(value) if isinstance(value, list) else str(value)


def _scales(c: Cell) -> str:
    scales = c.get(T + "scales") or [1.0]
    return "1 (no rescaling)" if list(scales) == [1.0] else _numbers(scales)


def _interpolation(c: Cell) -> str:
    if list(c.get(T + "scales") or [1.0]) == [1.0]:
        return "—"
    return str(c.get(T + "scale_interpolation") or "bilinear")


def _smart_crop(c: Cell) -> str:
    ratio = c.get(T + "smart_crop_max_ratio")
    if ratio is None:
        return "— (plain random crop)"
    counted = "ignore counted" if c.get(T + "smart_crop_count_ignore") else "ignore not counted"
    return f"max share {_number(ratio)}, {counted}"


def _flips(c: Cell) -> str:
    flips = [name for name, key in (("h", "hflip"), ("v", "vflip")) if c.get(T + key)]
    return " + ".join(flips) + " (p 0.5)" if flips else "—"


def _rotate(c: Cell) -> str:
    if not c.get(T + "rotate90"):
        return "—"
    return f"p {_number(c.get(T + 'rotate90_p') if c.get(T + 'rotate90_p') is not None else 1.0)}"


def _colour(c: Cell) -> str:
    if not c.get(T + "color_jitter"):
        return "—"
    p = c.get(T + "color_jitter_p")
    return f"±0.25, p {_number(p if p is not None else 0.5)}"


def _sharpen(c: Cell) -> str:
    return "p 0.5" if c.get(T + "sharpen") else "—"


def _scheduler(c: Cell) -> str:
    target = str(c.get("scheduler._target_")).rsplit(".", 1)[-1]
    eta = _number(c.get("scheduler.eta_min"))
    if target == "CosineAnnealingWarmRestarts":
        t0, mult = c.get("scheduler.T_0"), c.get("scheduler.T_mult")
        return f"cosine restarts T_0 {t0}, T_mult {mult}, eta_min {eta}"
    if target == "CosineAnnealingLR":
        return f"cosine T_max {c.get('scheduler.T_max')}, eta_min {eta}"
    return target


def _protocol_splits(name: str) -> Callable[[Cell], str]:
    def cell(c: Cell) -> str:
        keys = ("train_split", "val_split", "test_split")
        return " / ".join(_splits(c.get(f"protocols.{name}.{k}")) for k in keys)

    return cell


def _protocol_choice(name: str) -> Callable[[Cell], str]:
    def cell(c: Cell) -> str:
        monitor = c.get(f"protocols.{name}.monitor")
        return f"{monitor}, {c.get(f'protocols.{name}.test_checkpoint')}"

    return cell


def _tta(c: Cell) -> str:
    tta = str(c.get("test.inference.tta"))
    parts = [tta]
    rotations = c.get("test.inference.rotations")
    if rotations:
        parts[0] += f" × rotations {_numbers(rotations)}"
    scales = c.get("test.inference.scales")
    if scales:
        parts[0] += f" × scales {_numbers(scales)} ({c.get('test.inference.interpolation')})"
    parts[0] += f", {_inference_options(c).passes} passes"
    patch = c.get("test.inference.patch_size")
    if patch:
        size = "×".join(str(p) for p in (patch if isinstance(patch, list) else [patch, patch]))
        tiling = "padded top/left, " if c.get("test.inference.pad") == "top_left" else ""
        parts.append(f"{tiling}{size} windows, batch {c.get('test.inference.batch_size')}")
    else:
        parts.append("whole images")
    return "; ".join(parts)


def _inference_options(c: Cell) -> InferenceOptions:
    node = c.cfg.test.inference
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    return inference_options({str(k): v for k, v in values.items()})


def _tta_keys(c: Cell) -> tuple[str, ...]:
    keys = ["tta"]
    keys += ["rotations"] if c.get("test.inference.rotations") else []
    keys += ["scales", "interpolation"] if c.get("test.inference.scales") else []
    if c.get("test.inference.patch_size"):
        keys += ["patch_size", "batch_size", "overlap", "pad", "blend"]
    return tuple(f"test.inference.{k}" for k in keys)


def _test_output(c: Cell) -> str:
    submission = c.get("test.submission")
    if submission:
        return f"{submission} server archive"
    return f"metrics on the {c.get('test.labels')} labels"


def _plain(key: str) -> Callable[[Cell], str]:
    return lambda c: _number(c.get(key))


@dataclass(frozen=True)
class Row:
    """A row of the tables: a setting, how a cell shows it, and the keys that set it.

    Attributes:
        label: The setting's name in the first column.
        show: The cell's text.
        keys: The dotted keys whose YAML lines are the cell's sources, or a function of the
            cell giving them (keys that do not apply to a cell are left out).
    """

    label: str
    show: Callable[[Cell], str]
    keys: tuple[str, ...] | Callable[[Cell], tuple[str, ...]]

    def source_keys(self, cell: Cell) -> tuple[str, ...]:
        """The keys whose sources ``cell`` lists for this row."""
        return self.keys(cell) if callable(self.keys) else self.keys


_SPLIT_KEYS = ("train_split", "val_split", "test_split")

ROWS: tuple[Row, ...] = (
    Row("epochs", _plain("dataset.max_epochs"), ("dataset.max_epochs",)),
    Row("batch size", _plain("dataset.batch_size"), ("dataset.batch_size",)),
    Row("crop", _plain("dataset.crop_size"), ("dataset.crop_size",)),
    Row("scales", _scales, (T + "scales",)),
    Row("rescale interpolation", _interpolation, (T + "scale_interpolation",)),
    Row("smart crop", _smart_crop, (T + "smart_crop_max_ratio", T + "smart_crop_count_ignore")),
    Row("mosaic", _plain("dataset.train.mosaic_ratio"), ("dataset.train.mosaic_ratio",)),
    Row("flips", _flips, (T + "hflip", T + "vflip")),
    Row("rotation by 90°", _rotate, (T + "rotate90", T + "rotate90_p")),
    Row("brightness/contrast", _colour, (T + "color_jitter", T + "color_jitter_p")),
    Row("sharpen", _sharpen, (T + "sharpen",)),
    Row(
        "encoder weights",
        lambda c: "ImageNet" if c.get("model.pretrained") else "random",
        ("model.pretrained",),
    ),
    Row("backbone", _plain("model.net.backbone"), ("model.net.backbone",)),
    Row("lr", _plain("model.lr"), ("model.lr",)),
    Row(
        "backbone lr",
        lambda c: (
            "— (all at lr)"
            if c.get("model.backbone_lr") is None
            else _plain("model.backbone_lr")(c)
        ),
        ("model.backbone_lr",),
    ),
    Row("weight decay", _plain("model.weight_decay"), ("model.weight_decay",)),
    Row("no weight decay on biases", _plain("model.no_bias_decay"), ("model.no_bias_decay",)),
    Row(
        "Lookahead k / alpha / phase",
        lambda c: (
            f"{c.get('optimizer.k')} / {_number(c.get('optimizer.alpha'))} / "
            f"{c.get('optimizer.phase')}"
        ),
        ("optimizer.k", "optimizer.alpha", "optimizer.phase"),
    ),
    Row(
        "scheduler (per epoch)",
        _scheduler,
        ("scheduler.T_max", "scheduler.T_0", "scheduler.T_mult", "scheduler.eta_min"),
    ),
    Row("precision", _plain("trainer.precision"), ("trainer.precision",)),
    Row(
        "original: train / select / test",
        _protocol_splits("original"),
        tuple(f"protocols.original.{k}" for k in _SPLIT_KEYS),
    ),
    Row(
        "original: monitor, tested",
        _protocol_choice("original"),
        ("protocols.original.monitor", "protocols.original.test_checkpoint"),
    ),
    Row(
        "heldout: train / select / test",
        _protocol_splits("heldout"),
        tuple(f"protocols.heldout.{k}" for k in _SPLIT_KEYS),
    ),
    Row(
        "heldout: monitor, tested",
        _protocol_choice("heldout"),
        ("protocols.heldout.monitor", "protocols.heldout.test_checkpoint"),
    ),
    Row("test-time augmentation", _tta, _tta_keys),
    Row(
        "test output",
        _test_output,
        lambda c: ("test.submission",) if c.get("test.submission") else ("test.labels",),
    ),
)
"""The rows of each dataset's table, in order."""


# --- document ------------------------------------------------------------------------------

HEADER = """\
# Training recipes of the paper grid

<!-- Generated by scripts/make_recipes_doc.py from conf/ (lossd.results.recipes); do not edit:
change the YAML and regenerate. tests/test_recipes.py fails when this file is out of date. -->

Every cell of the paper grid (`python scripts/train.py -m experiment=paper`: LoveDA, UAVid,
Potsdam; `experiment=paper_vaihingen` adds ISPRS Vaihingen) trains with the recipe of the code
behind its published numbers: `conf/recipe/<dataset>_<model>.yaml`, chosen by
`optional recipe: ${dataset}_${model}` in `conf/train.yaml` for every run on a real dataset
(the synthetic set has none). The originals, read at these commits:

- **GeoSeg** github.com/WangLibo1995/GeoSeg @9453fe4: UNetFormer's configs
  (`config/<dataset>/unetformer.py`), dataset classes, `tools/utils.py` (Lookahead,
  `process_model_params`) and test scripts. ABCNet (ported in GeoSeg, no config) and FCN-8s
  (no original) take UNetFormer's recipe: `conf/recipe/<dataset>_{abcnet,fcn}.yaml` extend
  `<dataset>_unetformer.yaml`.
- **SFA-Net** github.com/j2jeong/priv @3c442da (`config/<dataset>/sfanet.py`, byte-identical
  in qwqwqer233/Lossd @86ed3c0), with the optimiser helpers of **catalyst 20.09**.

Protocols (`protocol=`, conf/train.yaml): *original* is what the original code did, the
paper grid's default (conf/experiment/paper.yaml, which also sets `loss.ignore_mode: authors`);
*heldout* trains on train, selects the checkpoint on val and tests it once. "train+val" trains
on both splits; LoveDA and UAVid test labels are withheld, so their test writes the server
archive. Each value is the one a run uses; the numbers in brackets point to the YAML line that
sets it and its comment, which names the original file, line and commit.

## Test-time augmentation

One rule per dataset, for every model: the TTA and windows of the test commands in the original
READMEs (GeoSeg README.md:253-275 @9453fe4; SFA-Net README.md:161-200 @3c442da, the same per
dataset), each as that test script defines its `-t` option, in `conf/inference/<dataset>.yaml`
(chosen by `inference@test.inference: ${dataset}` in conf/train.yaml):

{TTA_TABLE}

The passes, their order and their undoing are ttach's (`SegmentationTTAWrapper`, qubvel/ttach
@94e579e): a rescale is undone with the interpolation that made it (bicubic), and the logits
of the passes are averaged before the argmax; on random networks lossd's TTA gives ttach's
logits exactly for each of these rules. UAVid's test frames are kept whole by the preparation
(version 3) and predicted as inference_uavid.py does: the frame padded with black at the top
and left to a multiple of 1152×1024, windows without overlap, the bottom-right frame kept.
`scripts/predict.py --submission <dataset>` takes the same rule by default. (SFA-Net's
config/potsdam/sfanet.py:20 names `test_time_aug = 'd4'`, which no script reads; its README
tests Potsdam with `-t 'lr'`.)

## Potsdam's and Vaihingen's padding, flipped copies and car crops

The Potsdam patches are GeoSeg's `tools/potsdam_patch_split.py` output pixel for pixel
(checked against the script itself, run with albumentations 1.3.1 on fake tiles): every tile is
padded at the *top and left* to a multiple of 1024 (`PadIfNeeded(position='bottom_right')`
keeps the image's bottom-right corner; 144 px of a 6000 px side), and the training split also
holds each tile flipped left-right and top-bottom, *flipped before* it is padded and cut. The
padding of the label is a bug of the original script reproduced on purpose: it pads the colour
label with `value=6`, which albumentations 1.x makes the colour (6, 0, 0), matched by no class
and so left at class 0, **impervious surfaces** (tools/potsdam_patch_split.py:67-68, 96-106).
4.6 % of the pixels of every padded 6144² tile are such black padding labelled impervious
surfaces, trained on and scored by the published Potsdam numbers. lossd writes the padding as
255 and applies the protocol when loading: under `protocol=original` it is impervious surfaces
in training, validation and the test metrics; under `heldout` it is ignored. The test block of
an original-protocol record also holds `metrics_without_padding`, the same predictions scored
with the padding ignored, which shows how much the padding adds.

Vaihingen's patches are GeoSeg's `tools/vaihingen_patch_split.py` output in the same way
(checked likewise): the same padding (impervious surfaces under `protocol=original`), the same
flipped copies, training windows at stride 512, and its car crops: for every training window
the script draws a square crop of 384 to 512 px, zoomed to 1024², and where cars cover more than
10 % of it the window is replaced by four patches of the crop (as is, flipped top-bottom and
left-right, turned by a random multiple of 90°; tools/vaihingen_patch_split.py:156-177,
213-232). GeoSeg's draws are not reproducible (Python re-seeds `random` in its pool workers);
lossd seeds one stream per area version, with the calls of albumentations 1.3.1 in the same
order, so that prepared folders are identical from run to run (docs/datasets.md §4).

## ABCNet's backbone learning rate

ABCNet has no original config: GeoSeg ports the network (geoseg/models/ABCNet.py) and the
UNetFormer recipe is the closest. That recipe gives the backbone 6e-5 through
`layerwise_params = {"backbone.*": ...}` matched with `re.match` on the parameter names
(tools/utils.py:71-74), and GeoSeg's ABCNet names its encoder `cp.resnet.*`, which the pattern
never matches (0 of its 130 parameters): run literally, the recipe trains all of ABCNet at
6e-4. The paper grid does the same (`model.backbone_lr: null` in
conf/recipe/<dataset>_abcnet.yaml), so ABCNet's cells are trained as the code behind them
would train them; `model.backbone_lr=6e-5` gives the split the recipe intends.
"""


def _tta_table(cells: Sequence[Cell]) -> list[str]:
    """The test-time rule of each dataset, with its ``tta`` line's comment (the test command).

    One cell per dataset: every model has its dataset's rule (conf/inference/<dataset>.yaml).
    """
    out = ["| dataset | rule | source |", "|---|---|---|"]
    for cell in cells:
        source = cell.sources.get("test.inference.tta")
        where = source.footnote().replace("|", "\\|") if source else ""
        out.append(f"| {get_info(cell.dataset).label} | {_tta(cell)} | {where} |")
    return out


def _table(cells: Sequence[Cell]) -> list[str]:
    """One dataset's table and its numbered sources."""
    notes: dict[Source, int] = {}
    header = "| setting | " + " | ".join(str(c.cfg.model.label) for c in cells) + " |"
    out = [header, "|---" * (len(cells) + 1) + "|"]
    for row in ROWS:
        entries = []
        for cell in cells:
            marks = []
            for key in row.source_keys(cell):
                source = cell.sources.get(key)
                if source is not None:
                    number = notes.setdefault(source, len(notes) + 1)
                    if number not in marks:
                        marks.append(number)
            text = row.show(cell).replace("|", "\\|")
            if marks:
                text += " [" + ", ".join(str(m) for m in marks) + "]"
            entries.append(text)
        out.append(f"| {row.label} | " + " | ".join(entries) + " |")
    out += ["", "Sources:", ""]
    out += [f"{number}. {source.footnote()}" for source, number in notes.items()]
    return out


def recipes_markdown(conf_dir: Path = CONF_DIR) -> str:
    """The text of docs/recipes.md: a table per dataset, a column per model, a row per setting."""
    datasets, models = paper_cells(conf_dir)
    tables = {d: [compose_cell(d, m, conf_dir) for m in models] for d in datasets}
    lines = [HEADER.replace("{TTA_TABLE}", "\n".join(_tta_table([c[0] for c in tables.values()])))]
    for dataset, cells in tables.items():
        lines += [f"## {get_info(dataset).label}", ""]
        lines += _table(cells)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_recipes_doc(path: Path, conf_dir: Path = CONF_DIR) -> Path:
    """Write :func:`recipes_markdown` to ``path`` (atomically); returns ``path``."""
    text = recipes_markdown(conf_dir)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
