"""FCN-8s: the skip architecture of Long et al. (CVPR 2015) on a timm encoder."""

import pytest
import torch
import torch.nn.functional as F

from lossd.models import FCN8s, build_model
from lossd.models.fcn import bilinear_upsampling_kernel
from tests.models import count


@pytest.mark.parametrize("num_classes", [6, 7, 8])
def test_parameters_are_encoder_plus_score_and_upsampling_layers(num_classes):
    model = build_model("fcn", num_classes)
    assert isinstance(model, FCN8s)
    channels = model.backbone.feature_info.channels()
    assert channels == [512, 1024, 2048]  # timm resnet50 stages 2-4
    # three 1x1 score layers with bias + two 4x4 class-to-class deconvolutions without bias
    head = sum(c * num_classes + num_classes for c in channels) + 2 * num_classes**2 * 16
    assert count(model) == count(model.backbone) + head


def test_encoder_strides():
    assert build_model("fcn", 2).backbone.feature_info.reduction() == [8, 16, 32]


def test_score_layers_start_at_zero():
    model = build_model("fcn", 4, backbone="resnet18").eval()
    with torch.no_grad():
        assert torch.equal(model(torch.randn(1, 3, 64, 64)), torch.zeros(1, 4, 64, 64))


def test_learned_upsampling_starts_as_bilinear_interpolation():
    model = build_model("fcn", 3, backbone="resnet18")
    scores = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        learned = model.upscore_stride32(scores)
    reference = F.interpolate(scores, scale_factor=2, mode="bilinear", align_corners=False)
    assert learned.shape == (1, 3, 16, 16)
    # equal away from the border (the deconvolution pads with zeros, interpolate replicates)
    assert torch.allclose(learned[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-6)


def test_bilinear_kernel_values():
    kernel = bilinear_upsampling_kernel(2, 2)
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])  # hand-computed for factor 2
    assert torch.allclose(kernel[0, 0], ramp[:, None] * ramp[None, :])
    assert torch.equal(kernel[0, 1], torch.zeros(4, 4))
    assert kernel[1, 1].sum() == pytest.approx(4.0)  # factor^2: preserves a constant map


def test_training_mode_returns_a_one_tuple():
    model = build_model("fcn", 2, backbone="resnet18").train()
    outputs = model(torch.randn(2, 3, 64, 64))
    assert isinstance(outputs, tuple)
    assert len(outputs) == 1
    assert model.num_aux_outputs == 0
