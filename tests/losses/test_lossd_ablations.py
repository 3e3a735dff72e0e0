"""Lossd's ablation options compose and build the objective they name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from lossd.losses import DistanceLoss, LinearWarmup, SegmentationObjective

ROOT = Path(__file__).resolve().parents[2]

# option -> (max_iter, classes, class weights by class, warm-up epochs); synthetic: 6 classes
EXPECTED = {
    "lossd": (50, (0, 1, 2, 3, 4, 5), [1.0] * 6, 0.0),
    "lossd_iter5": (5, (0, 1, 2, 3, 4, 5), [1.0] * 6, 0.0),
    "lossd_iter10": (10, (0, 1, 2, 3, 4, 5), [1.0] * 6, 0.0),
    "lossd_iter20": (20, (0, 1, 2, 3, 4, 5), [1.0] * 6, 0.0),
    "lossd_noclutter": (50, (0, 1, 2, 3, 4), [1.0] * 5 + [0.0], 0.0),
    "lossd_carweight": (50, (0, 1, 2, 3, 4, 5), [1.0, 1.0, 1.0, 1.0, 2.0, 1.0], 0.0),
    "lossd_warmup": (50, (0, 1, 2, 3, 4, 5), [1.0] * 6, 1.0),
}


@pytest.mark.parametrize("option", sorted(EXPECTED))
def test_option_builds_the_intended_objective(make_cfg, option):
    cfg = make_cfg(f"loss={option}")
    assert cfg.loss.name == option
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    extra = objective.extra
    assert isinstance(extra, DistanceLoss)
    max_iter, classes, weights, warmup = EXPECTED[option]
    assert extra.max_iter == max_iter
    assert extra.classes == classes
    assert extra.weights.tolist() == weights
    assert objective.extra_weight == cfg.loss.lambda_d == 1.0
    assert objective.schedule == LinearWarmup(warmup_epochs=warmup)
    objective.set_progress(0.5)
    assert objective.scales() == (1.0, 0.5 if warmup == 1.0 else 1.0)
    logits = torch.randn(2, 6, 16, 16, requires_grad=True)
    target = torch.randint(0, 6, (2, 16, 16))
    total, terms = objective(logits, target)
    total.backward()
    assert torch.isfinite(total) and "lossd" in terms


def test_labels_are_distinct(make_cfg):
    labels = {option: make_cfg(f"loss={option}").loss.label for option in EXPECTED}
    assert len(set(labels.values())) == len(labels), labels


def test_noclutter_follows_the_scored_classes_of_the_dataset(make_cfg):
    # LoveDA scores every class: the option then equals plain Lossd.
    cfg = make_cfg("loss=lossd_noclutter", "dataset=loveda")
    extra = instantiate(cfg.loss.objective.extra)
    assert extra.classes == tuple(range(cfg.dataset.num_classes))


def test_carweight_refuses_a_dataset_with_other_classes(make_cfg):
    cfg = make_cfg("loss=lossd_carweight", "dataset=loveda")
    with pytest.raises(InstantiationException, match="class_weights has 6 entries"):
        instantiate(cfg.loss.objective.extra)


def test_train_cli_prints_the_ablation(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    done = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "loss=lossd_noclutter",
            f"paths.data_dir={tmp_path / 'no-data'}",
            "--cfg",
            "job",
            "--resolve",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "name: lossd_noclutter" in done.stdout
    assert "- 4\n" in done.stdout and "max_iter: 50" in done.stdout
