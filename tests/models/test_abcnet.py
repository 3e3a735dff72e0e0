"""ABCNet: fidelity to GeoSeg's port (parameter counts, cost, key names) and batch size 1."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lossd.models import ABCNet, build_model
from lossd.models._blocks import SingleValueSafeBatchNorm2d
from tests.models import count

# Measured on GeoSeg's own network (GS geoseg/models/ABCNet.py @9453fe4,
# ABCNet(n_classes=n, pretrained=False), timm 1.0.31, auxiliary heads included):
# docs/reference.md, "Model fidelity targets" [RUN].
PARAMS = {6: 13_666_563, 7: 13_703_811, 8: 13_741_059}
MACS_1024 = 62.4e9  # conv + matmul MACs at 1x3x1024^2, eval (same section, 62.44 [RUN])


@pytest.mark.parametrize("num_classes", sorted(PARAMS))
def test_parameter_count_matches_geoseg(num_classes):
    model = build_model("abcnet", num_classes)
    assert isinstance(model, ABCNet)
    assert count(model) == PARAMS[num_classes]


def test_macs_match_geoseg():
    # Convolutions and the linear attention scale with the pixel count: x16 from 256^2.
    model = build_model("abcnet", 6).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 256, 256))
    assert 16 * counter.get_total_flops() / 2 == pytest.approx(MACS_1024, rel=0.005)


def test_trains_at_batch_size_one():
    model = build_model("abcnet", 3).train()
    running_mean = model.cp.conv_avg.bn.running_mean.clone()
    outputs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(out.shape) for out in outputs] == [(1, 3, 64, 64)] * 3
    sum(out.sum() for out in outputs).backward()
    assert model.cp.conv_avg.bn.weight.grad is not None
    # the pooled branch used (and left unchanged) its running statistics
    assert torch.equal(model.cp.conv_avg.bn.running_mean, running_mean)


def test_single_value_batchnorm_equals_batchnorm_otherwise():
    torch.manual_seed(0)
    safe, plain = SingleValueSafeBatchNorm2d(4), torch.nn.BatchNorm2d(4)
    x = torch.randn(3, 4, 1, 1)
    assert torch.equal(safe(x), plain(x))
    assert torch.equal(safe.running_var, plain.running_var)
    single = torch.randn(1, 4, 1, 1)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        plain(single)
    expected = (single - safe.running_mean[None, :, None, None]) / torch.sqrt(
        safe.running_var[None, :, None, None] + safe.eps
    )
    assert torch.allclose(safe(single), expected, atol=1e-6)


def test_attention_starts_switched_off():
    model = build_model("abcnet", 2)
    gammas = [m.gamma for m in model.modules() if hasattr(m, "gamma")]
    assert len(gammas) == 3  # arm16, arm32, fam
    assert all(g.item() == 0.0 for g in gammas)


def test_linear_attention_matches_its_quadratic_form():
    torch.manual_seed(0)
    attention = build_model("abcnet", 2).fam.conv_atten
    with torch.no_grad():
        attention.gamma.fill_(1.0)
        x = torch.randn(2, 256, 5, 7)
        q = torch.nn.functional.normalize(attention.query_conv(x).flatten(2), dim=1)
        k = torch.nn.functional.normalize(attention.key_conv(x).flatten(2), dim=1)
        v = attention.value_conv(x).flatten(2)
        weights = 1 + q.transpose(1, 2) @ k  # [B, N, N]: first-order softmax kernel
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-6 * q.sum(1)[..., None])
        naive = (v @ weights.transpose(1, 2)).view(2, 256, 5, 7)
        assert torch.allclose(attention(x), naive, atol=1e-5)


def test_geoseg_checkpoint_keys_are_remapped():
    model = build_model("abcnet", 2)
    geoseg = {
        ("cp.resnet." + k[len("backbone.") :] if k.startswith("backbone.") else k): v
        for k, v in model.state_dict().items()
    }
    assert ABCNet.remap_state_dict(geoseg).keys() == model.state_dict().keys()


def test_bfloat16_autocast_gives_finite_logits():
    model = build_model("abcnet", 3).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for module in model.modules():
            if hasattr(module, "gamma"):
                module.gamma.data.fill_(1.0)
        logits = model(torch.randn(1, 3, 64, 64))
    assert torch.isfinite(logits).all()
