"""Shared fixtures: an offline environment, tiny prepared datasets, composed configs."""

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants as hf_constants
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from lossd.engine.config import register_resolvers
from lossd.io import write_image, write_mask
from tests.tiny import NUM_TEST, NUM_TRAIN, NUM_VAL, TILE_SIZE, TINY_RUN

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# No network and no stray output in tests: W&B offline and quiet, HF hub offline.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))
register_resolvers()


def write_prepared_split(
    root: Path,
    split: str,
    count: int,
    size: int = 32,
    num_classes: int = 6,
    seed: int = 0,
    with_masks: bool = True,
) -> list[str]:
    """Write ``count`` random image/mask pairs in the prepared layout; returns the stems."""
    rng = np.random.default_rng(seed)
    stems = []
    for index in range(count):
        stem = f"img{index:03d}_0_0"
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        write_image(root / split / "images" / f"{stem}.png", image)
        if with_masks:
            mask = rng.integers(0, num_classes, (size, size), dtype=np.uint8)
            write_mask(root / split / "masks" / f"{stem}.png", mask)
        stems.append(stem)
    return stems


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (64² tiles) generated once per test session."""
    from lossd.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic"
    prepare_synthetic(
        root,
        tile_size=TILE_SIZE,
        num_train=NUM_TRAIN,
        num_val=NUM_VAL,
        num_test=NUM_TEST,
        seed=0,
        progress=False,
    )
    return root


@pytest.fixture
def make_cfg(tmp_path: Path, synthetic_root: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/train.yaml for a tiny CPU run writing into ``tmp_path``."""

    def factory(*overrides: str) -> DictConfig:
        register_resolvers()  # resolvers and typed nodes (a test may have reset Hydra's store)
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[
                    "logger=none",
                    f"paths.data_dir={synthetic_root.parent}",
                    f"paths.results_dir={tmp_path / 'results'}",
                    f"+paths.output_dir_override={tmp_path / 'out'}",
                    *TINY_RUN,
                    *overrides,
                ],
            )
        with open_dict(cfg):
            cfg.paths.output_dir = cfg.paths.pop("output_dir_override")
        return cfg

    yield factory
    GlobalHydra.instance().clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fail every DNS lookup and socket connection; point the HF cache at an empty folder.

    Also lifts the offline switches this conftest sets, so that code paths that would try the
    network really try it (and fail here).
    """

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
