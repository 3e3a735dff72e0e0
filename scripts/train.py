"""Train a model: `python scripts/train.py [hydra overrides]` (see conf/train.yaml).

Examples:
    python scripts/train.py                                   # UNetFormer + Lossd, synthetic data
    python scripts/train.py loss=base                         # the same without Lossd
    python scripts/train.py -m loss=base,lossd seed=0,1,2     # multirun grid
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lossd.engine import run
from lossd.engine.config import register_resolvers
from lossd.errors import LossdError

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Train one configuration; returns the monitored metric (for sweepers)."""
    try:
        return float(run(cfg)["score"])
    except LossdError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher logs it and goes on with the other cells
        sys.exit(f"error: {err}")  # a single run: one line, no traceback


if __name__ == "__main__":
    main()
