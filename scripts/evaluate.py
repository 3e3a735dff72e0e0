r"""Evaluate a checkpoint on a dataset split and write its run record (conf/eval.yaml).

Usage: `python scripts/evaluate.py checkpoint=PATH [hydra overrides]`.

Examples:
    python scripts/evaluate.py checkpoint=outputs/uavid/unetformer/lossd/seed0/checkpoints/best.ckpt
    python scripts/evaluate.py checkpoint=best.ckpt inference=d4             # GeoSeg 'd4' TTA
    python scripts/evaluate.py checkpoint=best.ckpt labels=full save_masks=true
    python scripts/evaluate.py checkpoint=best.ckpt dataset=uavid split=val \
        inference=flip inference.patch_size=[1152,1024] inference.overlap=0.25
"""

import sys

import hydra
from omegaconf import DictConfig

from lossd.engine.config import register_resolvers
from lossd.engine.evaluate import evaluate
from lossd.errors import LossdError

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    """Evaluate one checkpoint; returns its mIoU (for sweepers)."""
    try:
        return float(evaluate(cfg)["metrics"]["mIoU"])
    except LossdError as err:  # a user-facing problem: one line, no traceback
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
