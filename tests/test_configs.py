"""Every option of every config group composes, and what it builds is what the engine expects."""

import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lossd.losses import SegmentationObjective

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("dataset", _options("dataset"))
def test_every_dataset_resolves_its_class_facts(make_cfg, dataset: str) -> None:
    from lossd.data import get_info

    cfg = make_cfg(f"dataset={dataset}")
    info = get_info(cfg.dataset.name)
    assert cfg.dataset.num_classes == info.num_classes
    assert list(cfg.dataset.eval_classes) == list(info.eval_classes)
    for key in ("root", "batch_size", "num_workers", "crop_size", "max_epochs", "train", "val"):
        assert key in cfg.dataset, f"conf/dataset/{dataset}.yaml lacks '{key}'"
    assert cfg.dataset.train._target_ == "lossd.data.SegmentationFolder"


@pytest.mark.parametrize("loss", _options("loss"))
def test_every_loss_builds_an_objective_that_runs(make_cfg, loss: str) -> None:
    cfg = make_cfg(f"loss={loss}")
    objective = instantiate(cfg.loss.objective)
    assert isinstance(objective, SegmentationObjective)
    assert cfg.loss.name == loss
    num_classes = cfg.dataset.num_classes
    logits = torch.randn(2, num_classes, 32, 32, requires_grad=True)
    aux = [torch.randn(2, num_classes, 32, 32) for _ in cfg.model.aux_weights]
    target = torch.randint(0, num_classes, (2, 32, 32))
    objective.set_progress(3.0)
    total, terms = objective((logits, *aux), target)
    assert torch.isfinite(total) and total.ndim == 0
    total.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    if loss != "base":
        assert objective.extra_name in terms


@pytest.mark.parametrize("optimizer", _options("optimizer"))
@pytest.mark.parametrize("scheduler", _options("scheduler"))
def test_optimizer_and_scheduler_options_build(make_cfg, optimizer: str, scheduler: str) -> None:
    from lossd.engine.optim import build_optimizer

    cfg = make_cfg(f"optimizer={optimizer}", f"scheduler={scheduler}")
    net = torch.nn.Conv2d(3, 2, 1)
    opt = build_optimizer(net, instantiate(cfg.optimizer), backbone_lr=None)
    sched = instantiate(cfg.scheduler)(opt)
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.model.lr)
    net(torch.zeros(1, 3, 2, 2)).sum().backward()
    opt.step()
    sched.step()


@pytest.mark.parametrize("logger", _options("logger"))
def test_logger_options_compose(make_cfg, logger: str) -> None:
    cfg = make_cfg(f"logger={logger}")
    assert cfg.logger._target_.startswith("lossd.engine.loggers.")


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}")
    OmegaConf.resolve(cfg)
    assert cfg.experiment_name


def test_unknown_option_fails_with_hydra_message(make_cfg) -> None:
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="model/unetfromer"):
        make_cfg("model=unetfromer")


@pytest.mark.parametrize("dataset", _options("dataset"))
def test_each_dataset_brings_its_recipe_scheduler(make_cfg, dataset: str) -> None:
    # docs/reference.md, "Training recipes": Potsdam and Vaihingen use warm restarts (T_0 15,
    # T_mult 2: two cycles make Potsdam's 45 epochs, three Vaihingen's 105, GeoSeg
    # config/vaihingen/unetformer.py:68); LoveDA and UAVid cosine over the epochs.
    cfg = make_cfg(f"dataset={dataset}")
    epochs = cfg.dataset.max_epochs  # the fixture shortens trainer.max_epochs
    cycles = {"potsdam": (15, 30), "vaihingen": (15, 30, 60)}
    if dataset in cycles:
        assert cfg.scheduler._target_.endswith("CosineAnnealingWarmRestarts")
        t0, mult = cfg.scheduler.T_0, cfg.scheduler.T_mult
        lengths = tuple(t0 * mult**k for k in range(len(cycles[dataset])))
        assert lengths == cycles[dataset] and sum(lengths) == epochs
    else:
        assert cfg.scheduler._target_.endswith(".CosineAnnealingLR")
        assert cfg.scheduler.T_max == cfg.trainer.max_epochs
    # The command line still picks another scheduler.
    other = make_cfg(f"dataset={dataset}", "scheduler=cosine")
    assert other.scheduler._target_.endswith(".CosineAnnealingLR")


@pytest.mark.parametrize(
    ("config", "override"),
    [
        ("train", "trainer.max_epochs=abc"),
        ("train", "metrics.diagnostics=maybe"),
        ("train", "trainer.channels_last=sometimes"),
        ("eval", "inference.overlap=lots"),
        ("eval", "inference.batch_size=two"),
    ],
)
def test_typed_nodes_refuse_wrong_types_at_composition(config: str, override: str) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    from lossd.engine.config import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    extra = ["checkpoint=x"] if config == "eval" else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        with pytest.raises(ConfigCompositionException, match=re.escape(override)):
            compose(config, overrides=[*extra, override])
        good = compose(config, overrides=extra)  # the same config composes without it
    assert good is not None


@pytest.mark.parametrize("dataset", ["synthetic", "loveda", "uavid", "potsdam"])
def test_eval_config_resolves_for_every_dataset(dataset: str) -> None:
    # the dataset files take their splits from the protocol: eval.yaml must provide one
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lossd.engine.config import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("eval", overrides=["checkpoint=x", f"dataset={dataset}"])
    from lossd.engine.evaluate import dataset_config

    node = dataset_config(cfg, {})  # what evaluate() uses: without the recipe-less train node
    resolved = OmegaConf.to_container(node, resolve=True)
    assert isinstance(resolved, dict) and "train" not in resolved
    assert resolved["name"] == dataset and resolved["val"]["split"] == "val"
