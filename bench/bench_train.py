"""Training throughput (images/s) and peak memory of the real training step, per model (issue 8).

Usage::

    python bench/bench_train.py                          # CPU: all models at 256² and 512²
    python bench/bench_train.py --device cuda --sizes 512 1024 --batch 8

Each row runs :meth:`lossd.engine.Trainer.train_epoch` (the loop users train with: autocast on
CUDA — bf16 where supported —, channels-last, the configured objective, Lookahead(AdamW)) over
in-memory random batches, so data loading is not measured. After ``--warmup`` steps the next
``--steps`` are timed (CUDA synchronised). Peak memory: ``torch.cuda.max_memory_allocated`` on
CUDA (on CPU see bench/bench_models.py, which measures each model in a fresh process).
"""

import argparse
import math
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import DataLoader, TensorDataset

from lossd.engine.config import build, register_resolvers
from lossd.engine.optim import build_optimizer
from lossd.engine.options import TrainerOptions
from lossd.engine.runtime import autocast_dtype
from lossd.engine.trainer import Trainer
from lossd.metrics import SegmentationMetrics

CONF = Path(__file__).resolve().parents[1] / "conf"


class _Batches(TensorDataset):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, mask = super().__getitem__(index)
        return {"image": image, "mask": mask}


def measure(
    model_name: str, loss: str, size: int, batch: int, steps: int, warmup: int, device: torch.device
) -> dict[str, float]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"model={model_name}",
                f"loss={loss}",
                "logger=none",
                "paths.output_dir=/tmp/bench_train",
            ],
        )
    model = build(cfg.model.net).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    objective = build(cfg.loss.objective).to(device)
    optimizer = build_optimizer(model, build(cfg.optimizer), cfg.model.backbone_lr)
    count = batch * (warmup + steps)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(count, 3, size, size, generator=gen)
    # Blocky random masks so that the boundary losses see real regions.
    coarse = torch.randint(
        0, cfg.dataset.num_classes, (count, size // 16, size // 16), generator=gen
    )
    masks = coarse.repeat_interleave(16, 1).repeat_interleave(16, 2)
    loader = DataLoader(_Batches(images, masks), batch_size=batch, pin_memory=device.type == "cuda")
    trainer = Trainer(
        model=model,
        objective=objective,
        optimizer=optimizer,
        scheduler=None,
        train_loader=loader,
        val_loader=loader,
        metrics=SegmentationMetrics(cfg.dataset.num_classes),
        options=TrainerOptions(
            max_epochs=1, limit_train_batches=warmup, progress=False, log_every_n_steps=10**9
        ),
        device=device,
        amp_dtype=autocast_dtype("auto", device),
    )
    trainer.train_epoch(0)  # warm-up (first batches)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_mem = torch.cuda.memory_allocated() if device.type == "cuda" else 0.0
    trainer.options = TrainerOptions(
        max_epochs=1, limit_train_batches=steps, progress=False, log_every_n_steps=10**9
    )
    trainer.train_loader = DataLoader(
        _Batches(images[batch * warmup :], masks[batch * warmup :]),
        batch_size=batch,
        pin_memory=device.type == "cuda",
    )
    start = time.perf_counter()
    trainer.train_epoch(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (
        (torch.cuda.max_memory_allocated() - base_mem) / 2**20
        if device.type == "cuda"
        else math.nan
    )
    return {"img_s": batch * steps / elapsed, "step_s": elapsed / steps, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unetformer", "abcnet", "fcn", "sfanet"])
    parser.add_argument("--losses", nargs="+", default=["base", "lossd"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    register_resolvers()
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    name = torch.cuda.get_device_name() if use_cuda else platform.processor() or "cpu"
    print(
        f"device {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        f"{'model':<11}{'size':>6}  {'loss':<19}{'img/s':>8}{'s/step':>9}"
        f"{'peak MiB':>10}{'x base':>8}"
    )
    for size in args.sizes:
        for model_name in args.models:
            # Interleaved rounds (base, lossd, ..., base, lossd, ...) so that a drift of the
            # machine's speed hits every loss alike; the median round is reported.
            runs: dict[str, list[dict[str, float]]] = {loss: [] for loss in args.losses}
            for _ in range(args.rounds):
                for loss in args.losses:
                    runs[loss].append(
                        measure(model_name, loss, size, args.batch, args.steps, args.warmup, device)
                    )
            rows = {
                loss: sorted(r, key=lambda x: x["step_s"])[len(r) // 2] for loss, r in runs.items()
            }
            for loss, row in rows.items():
                ratio = (row["step_s"] / rows["base"]["step_s"]) if "base" in rows else float("nan")
                print(
                    f"{model_name:<11}{size:>6}  {loss:<19}{row['img_s']:>8.2f}"
                    f"{row['step_s']:>9.3f}{row['peak_mib']:>10.0f}{ratio:>8.3f}"
                )


if __name__ == "__main__":
    main()
