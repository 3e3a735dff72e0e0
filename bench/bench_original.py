"""Our UNetFormer and ABCNet against the original GeoSeg code, in one process (issue 4).

Usage::

    pip install einops   # GeoSeg's UNetFormer imports it; lossd does not need it
    git clone https://github.com/WangLibo1995/GeoSeg /path/to/GeoSeg
    python bench/bench_original.py --geoseg /path/to/GeoSeg [--size 512] [--rounds 8]

The original modules are imported from the user's checkout
(``geoseg/models/UNetFormer.py``, ``geoseg/models/ABCNet.py``; nothing of them is in this
repository) and built with random weights (``pretrained=False``), 6 classes. Eval forward at
batch 1 and training step at batch 2 (AdamW, cross-entropy on every output) are timed as in
bench/bench_models.py, in interleaved rounds whose order alternates (ours, original, original,
ours, ...): load changes hit both alike and neither side always runs after the other (with a
fixed order, the side measured second looked 10 % faster here). The median round is reported
with the ratio ours / original. Target (issue 4): no slower than the original, i.e. ratios
<= 1 within the machine's noise.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import NUM_CLASSES, make_inputs, median_seconds, train_step

from lossd.models import build_model


def load_module(path: Path) -> ModuleType:
    """Import one file of the user's GeoSeg checkout."""
    if not path.is_file():
        raise SystemExit(f"error: '{path}' not found; pass --geoseg <GeoSeg checkout>")
    spec = importlib.util.spec_from_file_location(f"geoseg_{path.stem.lower()}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def original_models(geoseg: Path) -> dict[str, Callable[[], torch.nn.Module]]:
    models = geoseg / "geoseg" / "models"
    unetformer = load_module(models / "UNetFormer.py")
    abcnet = load_module(models / "ABCNet.py")
    return {
        "unetformer": lambda: unetformer.UNetFormer(num_classes=NUM_CLASSES, pretrained=False),
        "abcnet": lambda: abcnet.ABCNet(n_classes=NUM_CLASSES, pretrained=False),
    }


def timers(
    build: Callable[[], torch.nn.Module], size: int
) -> tuple[int, Callable[[], None], Callable[[], None]]:
    """Parameter count, eval-forward and training-step callables of one network."""
    device = torch.device("cpu")
    eval_model = build().eval()
    train_model = build().train()
    eval_images, _ = make_inputs(size, 1, device)
    images, target = make_inputs(size, 2, device)

    def evaluate() -> None:
        with torch.no_grad():
            eval_model(eval_images)

    step = train_step(
        train_model, images, target, torch.optim.AdamW(train_model.parameters(), lr=1e-4)
    )
    evaluate()  # warm-up
    step()
    return sum(p.numel() for p in train_model.parameters()), evaluate, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geoseg", type=Path, required=True, help="GeoSeg checkout")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=8, help="an even number: both orders alike")
    args = parser.parse_args()
    print(f"CPU, {torch.get_num_threads()} threads, {args.size}^2, median of {args.rounds} rounds")
    print(f"{'model':<11}{'side':<10}{'params':>12}{'eval s':>9}{'train s':>9}")
    for name, build_original in original_models(args.geoseg).items():
        sides = {
            "ours": timers(lambda n=name: build_model(n, NUM_CLASSES), args.size),
            "original": timers(build_original, args.size),
        }
        times: dict[str, dict[str, list[float]]] = {s: {"eval": [], "train": []} for s in sides}
        for round_index in range(args.rounds):
            order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
            for side in order:  # who goes first alternates: no side always follows the other
                _, evaluate, step = sides[side]
                times[side]["eval"].append(median_seconds(evaluate, 1))
                times[side]["train"].append(median_seconds(step, 1))
        median = {s: {k: statistics.median(v) for k, v in t.items()} for s, t in times.items()}
        for side, (params, _, _) in sides.items():
            print(
                f"{name:<11}{side:<10}{params:>12,}"
                f"{median[side]['eval']:>9.3f}{median[side]['train']:>9.3f}"
            )
        ratio = {k: median["ours"][k] / median["original"][k] for k in ("eval", "train")}
        print(f"{name:<11}{'ours/orig':<10}{'':>12}{ratio['eval']:>9.2f}{ratio['train']:>9.2f}")


if __name__ == "__main__":
    main()
