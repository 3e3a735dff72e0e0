"""Optimizer fidelity: GeoSeg's param groups (backbone lr, no bias decay) and Lookahead's k."""

import functools
import re

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lossd.engine.optim import Lookahead, build_optimizer, lookahead, param_groups
from lossd.errors import InvalidOptionError
from lossd.models import build_model

LR, BACKBONE_LR, WD = 1e-3, 1e-4, 0.05


class TinyNet(nn.Module):
    """A backbone (conv + BatchNorm) and a head (conv + GroupNorm + linear), one frozen tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Sequential(nn.Conv2d(4, 4, 1), nn.GroupNorm(2, 4), nn.Conv2d(4, 2, 1))
        self.frozen = nn.Parameter(torch.zeros(2), requires_grad=False)


def geoseg_options(model: nn.Module, backbone_lr: float, weight_decay: float) -> dict:
    """Name -> (lr, weight_decay), written from GeoSeg's process_model_params.

    WangLibo1995/GeoSeg@9453fe4 tools/utils.py:67-88 with config/loveda/unetformer.py:81-83:
    ``re.match("backbone.*", name)`` gives the backbone options, ``name.endswith("bias")``
    then sets weight_decay 0, anything unset takes AdamW's lr / weight_decay.
    """
    expected = {}
    for name, _ in model.named_parameters():
        options = {}
        if re.match("backbone.*", name) is not None:
            options = {"lr": backbone_lr, "weight_decay": weight_decay}
        if name.endswith("bias"):
            options["weight_decay"] = 0.0
        expected[name] = (options.get("lr", LR), options.get("weight_decay", WD))
    return expected


def options_by_name(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Name -> (lr, weight_decay, group name) as the optimizer holds them."""
    names = {id(p): n for n, p in model.named_parameters()}
    found = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            assert names[id(p)] not in found, "a parameter in two groups"
            found[names[id(p)]] = (group["lr"], group["weight_decay"], group["name"])
    return found


def adamw_lookahead(**keywords):
    base = functools.partial(torch.optim.AdamW, lr=LR, weight_decay=WD)
    return functools.partial(lookahead, base=base, **keywords)


def test_no_bias_decay_groups_of_a_tiny_model() -> None:
    net = TinyNet()
    optimizer = build_optimizer(net, adamw_lookahead(), BACKBONE_LR, no_bias_decay=True)
    found = options_by_name(net, optimizer)
    assert found == {
        "backbone.0.weight": (BACKBONE_LR, WD, "backbone"),
        "backbone.1.weight": (BACKBONE_LR, WD, "backbone"),  # a norm weight keeps its decay
        "backbone.0.bias": (BACKBONE_LR, 0.0, "backbone_no_decay"),
        "backbone.1.bias": (BACKBONE_LR, 0.0, "backbone_no_decay"),
        "head.0.weight": (LR, WD, "head"),
        "head.1.weight": (LR, WD, "head"),
        "head.2.weight": (LR, WD, "head"),
        "head.0.bias": (LR, 0.0, "head_no_decay"),
        "head.1.bias": (LR, 0.0, "head_no_decay"),
        "head.2.bias": (LR, 0.0, "head_no_decay"),
    }  # "frozen" (requires_grad=False) is in no group
    assert [g["name"] for g in optimizer.param_groups] == [
        "backbone",
        "backbone_no_decay",
        "head",
        "head_no_decay",
    ]


def test_default_groups_decay_everything() -> None:
    net = TinyNet()
    found = options_by_name(net, build_optimizer(net, adamw_lookahead(), BACKBONE_LR))
    assert len(found) == 10
    assert {v for k, v in found.items() if k.startswith("backbone")} == {
        (BACKBONE_LR, WD, "backbone")
    }
    assert {v for k, v in found.items() if k.startswith("head")} == {(LR, WD, "head")}
    single = options_by_name(net, build_optimizer(net, adamw_lookahead(), None))
    assert set(single.values()) == {(LR, WD, "all")}


@pytest.mark.parametrize("name", ["unetformer", "sfanet"])
def test_groups_of_a_real_model_equal_geoseg_process_model_params(name: str) -> None:
    net = build_model(name, 6)
    optimizer = build_optimizer(net, adamw_lookahead(), BACKBONE_LR, no_bias_decay=True)
    found = {k: v[:2] for k, v in options_by_name(net, optimizer).items()}
    expected = geoseg_options(net, BACKBONE_LR, WD)
    assert found == expected
    zero = sum(wd == 0.0 for _, wd in expected.values())
    assert 0 < zero < len(expected)


def test_bad_options_are_refused() -> None:
    net = TinyNet()
    with pytest.raises(InvalidOptionError, match=r"^model\.no_bias_decay='yes'; expected"):
        build_optimizer(net, adamw_lookahead(), None, no_bias_decay="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match=r"k=0"):
        adamw_lookahead(k=0)(param_groups(net, None))


def test_k_none_is_the_base_optimizer_alone() -> None:
    optimizer = adamw_lookahead(k=None)(param_groups(TinyNet(), None))
    assert type(optimizer) is torch.optim.AdamW


def test_explicit_no_bias_decay_works_with_a_plain_optimizer() -> None:
    net = TinyNet()
    factory = functools.partial(torch.optim.AdamW, lr=LR, weight_decay=WD)
    optimizer = build_optimizer(net, factory, None, no_bias_decay=True)
    found = options_by_name(net, optimizer)
    assert {k for k, v in found.items() if v[1] == 0.0} == {k for k in found if k.endswith(".bias")}


def trajectory(optimizer: torch.optim.Optimizer, weight: nn.Parameter, steps: int) -> list[float]:
    """The weight after each step, with the constant gradient 1."""
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()
        values.append(float(weight.detach()))
    return values


def moved_back(values: list[float]) -> list[int]:
    """Steps (1-based) after which the weight rose: the Lookahead syncs."""
    return [i + 1 for i in range(len(values)) if values[i] > (values[i - 1] if i else 0.0)]


@pytest.mark.parametrize("k", [5, 6])
def test_lookahead_syncs_every_k_steps(k: int) -> None:
    """SGD lr 0.1, gradient 1: -0.1 per fast step.

    timm's Lookahead (timm/optim/lookahead.py, ``step``) calls ``update_slow`` after steps k,
    2k, ...; the first call only stores the slow weights (-0.1 k), so the weight first moves
    back after step 2k, halfway (alpha 0.5) from -0.2 k to the slow -0.1 k.
    """
    weight = nn.Parameter(torch.zeros(1))
    base = functools.partial(torch.optim.SGD, lr=0.1)
    optimizer = lookahead([{"params": [weight]}], base, alpha=0.5, k=k)
    values = trajectory(optimizer, weight, 4 * k)
    assert moved_back(values) == [2 * k, 3 * k, 4 * k]
    assert values[k - 1] == pytest.approx(-0.1 * k)
    assert values[2 * k - 1] == pytest.approx(-0.15 * k)


class OneWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1))


@pytest.mark.parametrize(
    ("overrides", "k", "no_bias_decay"),
    [((), 6, False), (("optimizer.k=5", "++model.no_bias_decay=true"), 5, True)],
)
def test_config_defaults_and_geoseg_overrides(make_cfg, overrides, k, no_bias_decay) -> None:
    cfg = make_cfg("optimizer=adamw_lookahead", *overrides)
    assert (cfg.optimizer.k, cfg.model.get("no_bias_decay", False)) == (k, no_bias_decay)
    net = OneWeight()
    factory = instantiate(cfg.optimizer)
    optimizer = build_optimizer(net, factory, cfg.model.backbone_lr, no_bias_decay)
    assert {g["lookahead_k"] for g in optimizer.param_groups} == {k}
    decay = {n: v[1] for n, v in options_by_name(net, optimizer).items()}
    wd = cfg.model.weight_decay
    assert decay == {"weight": wd, "bias": 0.0 if no_bias_decay else wd}
    # AdamW with a constant gradient moves about lr per step: the syncs show where k is.
    assert moved_back(trajectory(optimizer, net.weight, 4 * k)) == [2 * k, 3 * k, 4 * k]


def test_lookahead_geoseg_phase_k2_against_a_hand_written_sequence() -> None:
    """GeoSeg's Lookahead (tools/utils.py:142-148): update when ``counter == 0``, then count.

    SGD lr 1 with gradient 1 moves the fast weight by -1 per step; alpha 0.5, k 2. By hand:
    step 1: fast -1, counter 0 -> slow stored (-1), fast = slow = -1;
    step 2: fast -2 (counter 1 -> 2 -> 0);
    step 3: fast -3, counter 0 -> slow = -1 + 0.5 (-3 + 1) = -2, fast = -2;
    step 4: fast -3; step 5: fast -4 -> slow = -2 + 0.5 (-4 + 2) = -3, fast = -3;
    step 6: fast -4; step 7: fast -5 -> slow = -3 + 0.5 (-5 + 3) = -4, fast = -4.
    """
    weight = nn.Parameter(torch.zeros(1))
    base = functools.partial(torch.optim.SGD, lr=1.0)
    optimizer = lookahead([{"params": [weight]}], base, alpha=0.5, k=2, phase="geoseg")
    fast = trajectory(optimizer, weight, 7)
    assert fast == [-1.0, -2.0, -2.0, -3.0, -3.0, -4.0, -4.0]
    slow = optimizer._base_optimizer.state[weight]["lookahead_slow_buff"]
    assert float(slow) == -4.0


def test_lookahead_timm_phase_k2_against_a_hand_written_sequence() -> None:
    """timm's phase: step 2 stores (-2), step 4: -2 + 0.5 (-4 + 2) = -3, step 6: -4."""
    weight = nn.Parameter(torch.zeros(1))
    base = functools.partial(torch.optim.SGD, lr=1.0)
    optimizer = lookahead([{"params": [weight]}], base, alpha=0.5, k=2, phase="timm")
    assert trajectory(optimizer, weight, 6) == [-1.0, -2.0, -3.0, -3.0, -4.0, -4.0]


def test_lookahead_timm_phase_equals_timms_own_wrapper() -> None:
    """The main job's phase is timm's Lookahead itself: the same weights, step for step."""
    from timm.optim.lookahead import Lookahead as TimmLookahead

    torch.manual_seed(0)
    net_a = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    net_b = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    net_b.load_state_dict(net_a.state_dict())
    ours = lookahead(
        [{"params": list(net_a.parameters())}],
        functools.partial(torch.optim.AdamW, lr=0.01),
        alpha=0.5,
        k=3,
        phase="timm",
    )
    theirs = TimmLookahead(torch.optim.AdamW(net_b.parameters(), lr=0.01), alpha=0.5, k=3)
    inputs = torch.randn(4, 3, 8, 8)
    for _ in range(10):
        for net, optimizer in ((net_a, ours), (net_b, theirs)):
            optimizer.zero_grad()
            net(inputs).square().mean().backward()
            optimizer.step()
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lookahead_phase_survives_a_state_dict_round_trip() -> None:
    weight = nn.Parameter(torch.zeros(1))
    base = functools.partial(torch.optim.SGD, lr=1.0)
    first = lookahead([{"params": [weight]}], base, alpha=0.5, k=2, phase="geoseg")
    trajectory(first, weight, 3)
    resumed = lookahead([{"params": [weight]}], base, alpha=0.5, k=2, phase="timm")
    resumed.load_state_dict(first.state_dict())
    assert {g["lookahead_phase"] for g in resumed.param_groups} == {"geoseg"}
    assert trajectory(resumed, weight, 2) == [-3.0, -3.0]  # steps 4, 5 of the geoseg sequence


def test_lookahead_rejects_an_unknown_phase() -> None:
    with pytest.raises(InvalidOptionError, match="phase='catalyst'"):
        lookahead(
            [{"params": [nn.Parameter(torch.zeros(1))]}], torch.optim.SGD, k=2, phase="catalyst"
        )


@pytest.mark.parametrize("k", [1, 7])
@pytest.mark.parametrize("alpha", [1e-3, 0.3, 1.0])
def test_lookahead_accepts_alpha_in_the_half_open_unit_interval_and_k_from_one(alpha, k) -> None:
    optimizer = adamw_lookahead(alpha=alpha, k=k)(param_groups(TinyNet(), None))
    assert {(g["lookahead_alpha"], g["lookahead_k"]) for g in optimizer.param_groups} == {
        (alpha, k)
    }


@pytest.mark.parametrize(
    ("alpha", "k"),
    [(0.0, 5), (-0.5, 5), (1.0 + 1e-9, 5), (1.5, 5), (0.5, 0), (0.5, 2.0), (0.5, True)],
)
def test_lookahead_refuses_alpha_outside_the_unit_interval_and_k_not_a_positive_int(
    alpha, k
) -> None:
    with pytest.raises(
        InvalidOptionError,
        match=re.escape(f"lookahead alpha={alpha}, k={k}; expected 0 < alpha <= 1, k >= 1"),
    ):
        adamw_lookahead(alpha=alpha, k=k)(param_groups(TinyNet(), None))


def test_lookahead_defaults() -> None:
    # lookahead(): timm's k=6 and phase, alpha 0.5 (module docstring); Lookahead(): GeoSeg's
    # Lookahead(base_optimizer) defaults k=5, alpha=0.5 (tools/utils.py:104 @9453fe4), its phase
    groups = param_groups(TinyNet(), None)
    base = functools.partial(torch.optim.AdamW, lr=LR, weight_decay=WD)
    wrapped = lookahead(groups, base)
    assert {
        (g["lookahead_alpha"], g["lookahead_k"], g["lookahead_phase"]) for g in wrapped.param_groups
    } == {(0.5, 6, "timm")}
    geoseg = Lookahead(base(param_groups(TinyNet(), None)))
    assert {
        (g["lookahead_alpha"], g["lookahead_k"], g["lookahead_phase"]) for g in geoseg.param_groups
    } == {(0.5, 5, "geoseg")}
    chosen = Lookahead(base(param_groups(TinyNet(), None)), alpha=0.25, k=3, phase="timm")
    assert {
        (g["lookahead_alpha"], g["lookahead_k"], g["lookahead_phase"]) for g in chosen.param_groups
    } == {(0.25, 3, "timm")}


def test_param_groups_keep_bias_decay_by_default() -> None:
    net = TinyNet()
    assert [g["name"] for g in param_groups(net, BACKBONE_LR)] == ["backbone", "head"]
    assert [g["name"] for g in param_groups(net, None)] == ["all"]
    split = [g["name"] for g in param_groups(net, BACKBONE_LR, no_bias_decay=True)]
    assert split == ["backbone", "backbone_no_decay", "head", "head_no_decay"]
