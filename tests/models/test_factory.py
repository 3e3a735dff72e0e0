"""The model contract shared by every network, checked through ``build_model``."""

from pathlib import Path

import huggingface_hub.constants as hf_constants
import hydra.utils
import pytest
import timm
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lossd.errors import CheckpointError, InvalidOptionError, WeightsUnavailableError
from lossd.models import MODEL_NAMES, build_model, load_weights

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"


def two_class_batch(size=64, batch=2, seed=0):
    """Images whose colour tells the class: a bright rectangle (class 1) on a dark ground."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.zeros(batch, size, size, dtype=torch.long)
    for i in range(batch):
        top, left = torch.randint(0, size // 2, (2,), generator=generator).tolist()
        target[i, top : top + size // 2, left : left + size // 3] = 1
    images = (2.0 * target.float() - 1.0)[:, None].repeat(1, 3, 1, 1)
    images = images + 0.1 * torch.randn(images.shape, generator=generator)
    return images, target


# --------------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------------
def test_model_names_are_the_four_networks():
    assert set(MODEL_NAMES) == {"unetformer", "abcnet", "fcn", "sfanet"}


def test_unknown_name_lists_valid_names():
    with pytest.raises(InvalidOptionError, match=r"unknown model name='unet'.*unetformer.*sfanet"):
        build_model("unet", 6)


def test_unknown_architecture_argument_is_rejected():
    with pytest.raises(InvalidOptionError, match="window_sise"):
        build_model("unetformer", 6, window_sise=8)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5])
def test_invalid_num_classes(num_classes):
    with pytest.raises(InvalidOptionError, match="num_classes"):
        build_model("fcn", num_classes, backbone="resnet18")


def test_unknown_backbone_is_rejected():
    with pytest.raises(InvalidOptionError, match="not_a_timm_model"):
        build_model("unetformer", 6, backbone="not_a_timm_model")


# --------------------------------------------------------------------------------------------
# the contract of every network
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_in_train_and_eval_mode(name):
    model = build_model(name, 5)
    for height, width in [(64, 64), (72, 100)]:  # 72 x 100 is not a multiple of 32
        images = torch.randn(2, 3, height, width)
        model.train()
        outputs = model(images)
        assert isinstance(outputs, tuple)
        assert len(outputs) == 1 + model.num_aux_outputs
        for out in outputs:
            assert out.shape == (2, 5, height, width)
            assert torch.isfinite(out).all()
        model.eval()
        with torch.no_grad():
            logits = model(images)
        assert isinstance(logits, torch.Tensor)
        assert logits.shape == (2, 5, height, width)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backbone_is_a_timm_feature_extractor(name):
    model = build_model(name, 3)
    info = model.backbone.feature_info
    images = torch.randn(1, 3, 64, 96)
    model.eval()
    with torch.no_grad():
        features = model.backbone(images)
    assert len(features) == len(info.channels())
    for feature, channels, stride in zip(features, info.channels(), info.reduction(), strict=True):
        assert feature.shape == (1, channels, 64 // stride, 96 // stride)
        assert torch.isfinite(feature).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(name, 4).train()
    outputs = model(torch.randn(2, 3, 64, 64))
    sum(out.sum() for out in outputs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    not_finite = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not_finite == []


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_input_shape_is_rejected(name):
    model = build_model(name, 2)
    with pytest.raises(Exception, match=r"\[B, 3, H, W\]"):
        model(torch.randn(1, 4, 64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_overfits_one_tiny_batch(name):
    torch.manual_seed(0)
    images, target = two_class_batch()
    model = build_model(name, 2).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(15):  # every network is above 0.97 after 10 steps (measured)
        optimizer.zero_grad()
        loss = sum(F.cross_entropy(out, target) for out in model(images))
        loss.backward()
        optimizer.step()
    # Judged on the training-mode main output (batch statistics): after 15 steps on one batch
    # of 2 the BatchNorm running statistics of EfficientNet-B3 (SFA-Net) are not yet
    # representative, so its eval-mode output still lags (measured 0.84 vs 0.998).
    with torch.no_grad():
        pred = model(images)[0].argmax(dim=1)
    accuracy = (pred == target).float().mean().item()
    assert accuracy > 0.9


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_saved_and_reloaded_model_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 3)
    with torch.no_grad():  # move BatchNorm statistics away from their initial values
        model.train()(torch.randn(2, 3, 64, 64))
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    reloaded = build_model(name, 3, weights=path)
    images = torch.randn(2, 3, 72, 100)
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.equal(model(images), reloaded(images))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"model": sd},
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"module." + k: v for k, v in sd.items()},
    ],
    ids=["model", "state_dict", "ddp-prefix"],
)
def test_wrapped_checkpoints_are_accepted(wrap, tmp_path):
    model = build_model("unetformer", 3)
    path = tmp_path / "wrapped.pt"
    torch.save(wrap(model.state_dict()), path)
    other = build_model("unetformer", 3)
    load_weights(other, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, other.state_dict()[key]), key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_checkpoint_for_other_num_classes_names_it(name, tmp_path):
    path = tmp_path / "six.pt"
    torch.save(build_model(name, 6).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*num_classes=6"):
        build_model(name, 7, weights=path)


def test_checkpoint_for_other_architecture_lists_keys(tmp_path):
    path = tmp_path / "sfanet.pt"
    torch.save(build_model("sfanet", 6).state_dict(), path)
    expected = r"does not fit UNetFormer.*unexpected keys: backbone.conv_stem"
    with pytest.raises(CheckpointError, match=expected):
        build_model("unetformer", 6, weights=path)


def test_checkpoint_without_state_dict(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "note": "no weights"}, path)
    with pytest.raises(CheckpointError, match="holds no state dict"):
        build_model("fcn", 6, weights=path, backbone="resnet18")


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build_model("fcn", 6, weights=tmp_path / "nope.pt", backbone="resnet18")


# --------------------------------------------------------------------------------------------
# pretrained encoders
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_pretrained_offline_raises_weights_unavailable(name, no_network):
    with pytest.raises(WeightsUnavailableError, match=r"hub id 'timm/.*backbone_weights="):
        build_model(name, 6, pretrained=True)


def test_pretrained_in_hf_offline_mode_raises_at_once(no_network, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        build_model("unetformer", 6, pretrained=True)


def test_pretrained_weights_are_read_from_the_hf_cache(no_network):
    torch.manual_seed(2)
    classifier = timm.create_model("resnet18", pretrained=False)
    # the Hugging Face cache layout: models--<org>--<name>/{refs/main, snapshots/<rev>/<file>}
    repo = Path(hf_constants.HF_HUB_CACHE) / "models--timm--resnet18.fb_swsl_ig1b_ft_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    torch.save(classifier.state_dict(), repo / "snapshots" / ("0" * 40) / "pytorch_model.bin")
    model = build_model("unetformer", 6, pretrained=True)
    assert torch.equal(model.backbone.conv1.weight, classifier.conv1.weight)


def test_local_backbone_weights_file_is_loaded(tmp_path, no_network):
    torch.manual_seed(1)
    classifier = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(classifier.state_dict(), path)
    model = build_model("unetformer", 6, backbone="resnet18", backbone_weights=path)
    for key in ("conv1.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(model.backbone.state_dict()[key], classifier.state_dict()[key])


def test_missing_backbone_weights_file(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        build_model("unetformer", 6, backbone_weights=tmp_path / "missing.safetensors")


def test_backbone_weights_of_another_model(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"resnet50.pth.*resnet18"):
        build_model("unetformer", 6, backbone="resnet18", backbone_weights=path)


# --------------------------------------------------------------------------------------------
# conf/model/*.yaml
# --------------------------------------------------------------------------------------------
def test_every_model_has_a_config():
    assert {p.stem for p in CONF_DIR.glob("*.yaml")} == set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_config_instantiates_and_matches_aux_outputs(name):
    model_cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    root = OmegaConf.create({"model": model_cfg, "dataset": {"num_classes": 7}})
    assert root.model.name == name
    assert root.model.net._target_ == "lossd.models.build_model"
    for key in ("pretrained", "weights", "aux_weights", "lr", "backbone_lr", "weight_decay"):
        assert key in root.model
    model = hydra.utils.instantiate(root.model.net)
    assert model.num_classes == 7
    assert len(root.model.aux_weights) == model.num_aux_outputs
    assert 0 < root.model.backbone_lr <= root.model.lr


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_last_memory_format_gives_the_same_logits(name):
    # the engine converts models and batches to channels_last on CUDA (conf/train.yaml)
    torch.manual_seed(0)
    model = build_model(name, 3).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(images)
        model = model.to(memory_format=torch.channels_last)
        logits = model(images.to(memory_format=torch.channels_last))
    assert torch.allclose(logits, expected, atol=1e-4, rtol=1e-4)
    model.train()
    outputs = model(images.to(memory_format=torch.channels_last))
    sum(out.sum() for out in outputs).backward()
