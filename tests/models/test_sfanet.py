"""SFA-Net: fidelity to the original's parameter counts and fusion structure."""

import pytest
import torch

from lossd.models import SFANet, build_model
from tests.models import count

# Measured on SFA-Net's own network (SF network/models/SFANet.py @3c442da, SFANet(num_classes),
# random weights, timm 1.0.31), not the paper's rounded "10.7 M" trainable parameters [3P]:
# docs/reference.md, "Model fidelity targets" [RUN] (backbone 10,103,336; decoder 597,041 at 8
# classes, 596,785 at 6).
PARAMS = {6: 10_700_121, 7: 10_700_249, 8: 10_700_377}
BACKBONE_PARAMS = 10_103_336
DECODER_PARAMS_8 = 597_041


@pytest.mark.parametrize("num_classes", sorted(PARAMS))
def test_parameter_count_matches_original(num_classes):
    model = build_model("sfanet", num_classes)
    assert isinstance(model, SFANet)
    assert count(model) == PARAMS[num_classes]
    assert count(model.backbone) == BACKBONE_PARAMS


def test_decoder_count_matches_original():
    assert count(build_model("sfanet", 8).decoder) == DECODER_PARAMS_8


def test_encoder_is_efficientnet_b3_at_four_strides():
    info = build_model("sfanet", 2).backbone.feature_info
    assert info.reduction() == [4, 8, 16, 32]
    assert info.channels() == [32, 48, 136, 384]


def test_pooled_gate_returns_one_value_per_channel():
    decoder = build_model("sfanet", 2).decoder
    gated = decoder.fam1(torch.randn(2, 48, 8, 8))
    assert gated.shape == (2, 48, 1, 1)
    x = torch.randn(2, 136, 4, 4)
    assert decoder.fam2(x).shape == x.shape


def test_refinement_head_shuffles_channels():
    assert build_model("sfanet", 2).decoder.p1.shuffle_groups == 4
    assert build_model("unetformer", 2).decoder.p1.shuffle_groups is None


def test_trains_at_batch_size_one():
    model = build_model("sfanet", 3).train()
    outputs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(out.shape) for out in outputs] == [(1, 3, 64, 64)] * 2
