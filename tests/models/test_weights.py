"""Pretrained weights: the configured backbones, the cache check, fetching, the offline message.

No test touches the network: ``no_network`` (tests/conftest.py) refuses every connection and
points the Hugging Face cache at an empty folder; the script runs with an empty ``HF_HOME``.
"""

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from omegaconf import OmegaConf

from lossd.errors import InvalidOptionError, WeightsUnavailableError
from lossd.models import MODEL_NAMES, build_model
from lossd.models import weights as weights_module
from lossd.models.weights import (
    FETCH_COMMAND,
    PRETRAINED_BACKBONES,
    check_weights,
    fetch_weights,
    format_weight_status,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL_CONF = ROOT / "conf" / "model"
SCRIPT = ROOT / "scripts" / "fetch_weights.py"

# Hub ids of the configured backbones' default pretrained tags (timm 1.0 registry).
HUB_IDS = {
    "resnet18.fb_swsl_ig1b_ft_in1k": "timm/resnet18.fb_swsl_ig1b_ft_in1k",
    "resnet50": "timm/resnet50.a1_in1k",
    "efficientnet_b3": "timm/efficientnet_b3.ra2_in1k",
}


def configured_backbones() -> dict[str, str]:
    """``net.backbone`` of every conf/model/*.yaml, by model name."""
    found = {}
    for path in sorted(MODEL_CONF.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        assert cfg.name == path.stem
        found[path.stem] = str(cfg.net.backbone)
    return found


def put_in_cache(hub_id: str, content: bytes = b"weights") -> Path:
    """Write a file in the Hugging Face cache layout (refs/main -> snapshots/<rev>/file)."""
    repo = Path(hf_constants.HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}"
    revision = "0" * 40
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    path = repo / "snapshots" / revision / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_the_backbone_table_is_what_the_model_configs_name() -> None:
    assert configured_backbones() == PRETRAINED_BACKBONES
    assert set(PRETRAINED_BACKBONES) == set(MODEL_NAMES)


def test_hub_ids_of_the_backbones(no_network: None) -> None:
    statuses = check_weights()
    assert {s.backbone: s.hub_id for s in statuses} == HUB_IDS
    assert [s.models for s in statuses] == [("unetformer", "abcnet"), ("fcn",), ("sfanet",)]


def test_check_on_an_empty_cache_lists_every_backbone_as_missing(no_network: None) -> None:
    statuses = check_weights()
    assert {s.backbone for s in statuses} == set(PRETRAINED_BACKBONES.values())
    assert not any(s.cached for s in statuses)
    lines = format_weight_status(statuses).splitlines()
    assert len(lines) == 3 and all(line.startswith("MISSING") for line in lines)


def test_check_finds_cached_weights(no_network: None) -> None:
    path = put_in_cache(HUB_IDS["efficientnet_b3"])
    statuses = {s.backbone: s for s in check_weights()}
    assert statuses["efficientnet_b3"].path == path
    assert [b for b, s in statuses.items() if not s.cached] == [
        "resnet18.fb_swsl_ig1b_ft_in1k",
        "resnet50",
    ]
    (only,) = check_weights(["sfanet"])
    assert only.cached and only.models == ("sfanet",)


def test_unknown_model_name_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidOptionError, match=r"\['segformer'\]; expected some of unetformer"):
        check_weights(["segformer"])


def test_check_script_on_an_empty_hf_home_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert str(tmp_path / "hf" / "hub") in done.stdout  # HF_HOME is honoured
    missing = [line for line in done.stdout.splitlines() if line.startswith("MISSING")]
    assert {line.split()[1] for line in missing} == set(PRETRAINED_BACKBONES.values())
    assert "3 of 3 missing" in done.stdout
    assert not (tmp_path / "hf" / "hub").exists()  # --check writes nothing


def test_fetch_without_network_fails_with_one_message(no_network: None) -> None:
    put_in_cache(HUB_IDS["resnet50"])
    with pytest.raises(WeightsUnavailableError) as info:
        fetch_weights()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "cannot download the pretrained weights of resnet18.fb_swsl_ig1b_ft_in1k "
        "(timm/resnet18.fb_swsl_ig1b_ft_in1k), efficientnet_b3 (timm/efficientnet_b3.ra2_in1k): "
        "the Hugging Face hub is unreachable (cannot connect to"
    )
    assert FETCH_COMMAND in message and hf_constants.HF_HUB_CACHE in message


def test_fetch_downloads_only_the_missing_weights(
    no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_in_cache(HUB_IDS["resnet50"])
    calls = []

    def fake_download(hub_id: str, filename: str) -> str:
        calls.append((hub_id, filename))
        return str(put_in_cache(hub_id))

    monkeypatch.setattr(weights_module, "_hub_unreachable_reason", lambda: None)
    monkeypatch.setattr(weights_module, "hf_hub_download", fake_download)
    logged: list[str] = []
    statuses = fetch_weights(log=logged.append)
    assert calls == [
        ("timm/resnet18.fb_swsl_ig1b_ft_in1k", "model.safetensors"),
        ("timm/efficientnet_b3.ra2_in1k", "model.safetensors"),
    ]
    assert len(logged) == 2 and all(s.cached for s in statuses)
    assert all(s.cached for s in check_weights())
    assert fetch_weights() == check_weights() and len(calls) == 2  # nothing left to fetch


def test_a_failed_download_names_the_weights(
    no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(hub_id: str, filename: str) -> str:
        raise OSError("disk full\nsecond line")

    monkeypatch.setattr(weights_module, "_hub_unreachable_reason", lambda: None)
    monkeypatch.setattr(weights_module, "hf_hub_download", failing)
    with pytest.raises(
        WeightsUnavailableError,
        match=r"^downloading the pretrained weights of resnet50 \(https://huggingface\.co/"
        r"timm/resnet50\.a1_in1k/resolve/main/model\.safetensors\) into .* failed "
        r"\(OSError: disk full second line\)$",
    ):
        fetch_weights(["fcn"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_offline_pretrained_model_names_the_weight_and_the_fetch_command(
    name: str, no_network: None
) -> None:
    backbone = PRETRAINED_BACKBONES[name]
    with pytest.raises(WeightsUnavailableError) as info:
        build_model(name, 6, pretrained=True)
    message = str(info.value)
    assert "\n" not in message  # scripts/train.py prints it as one line
    assert message.startswith(f"pretrained weights for timm model {backbone!r}")
    assert f"hub id {HUB_IDS[backbone]!r}" in message
    assert "Run `python scripts/fetch_weights.py` once" in message


def test_training_with_pretrained_weights_offline_fails_with_that_message(
    make_cfg, no_network: None
) -> None:
    from lossd.engine import run

    cfg = make_cfg("model=unetformer", "model.pretrained=true")
    with pytest.raises(
        WeightsUnavailableError,
        match=r"'resnet18\.fb_swsl_ig1b_ft_in1k'.*"
        r"python scripts/fetch_weights\.py",
    ):
        run(cfg)
