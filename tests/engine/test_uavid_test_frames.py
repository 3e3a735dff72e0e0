"""UAVid's test as GeoSeg's inference_uavid.py runs it: whole frames, padded windows, 'lr' TTA.

A deterministic stand-in network on full-size fake frames (2160×3840 and 2160×4096) against a
tiling of the frame written out by hand from inference_uavid.py (GeoSeg @9453fe4): pad the
uint8 frame at the top/left to a multiple of 1152×1024 with black (:97-109), normalise
(albumentations ``Normalize``, ImageNet mean/std), cut windows row by row at steps of the
window (:138-141), each window through ttach's HorizontalFlip × VerticalFlip (:160-167, logits
of the four passes averaged), argmax, paste the windows back (:217-220) and keep the bottom-right
frame (:222).
"""

import zipfile

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from lossd.data import uavid
from lossd.data.prepare.uavid import prepare_uavid
from lossd.engine.cli import dataset_inference
from lossd.engine.evaluate import inference_options
from lossd.engine.inference_model import InferenceModel
from lossd.engine.predict import Predictor, predict_submission
from tests.data.uavid import write_full_frames
from tests.results.test_submission import _uavid_colours

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
WINDOW = (1152, 1024)


class StandIn(nn.Module):
    """A fixed 1×1 convolution plus quadratic ramps over the window's rows and columns (a linear
    one would average out over the flips): a window cut elsewhere gives other logits."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator))
        self.register_buffer("rows", torch.randn(8, generator=generator).view(1, 8, 1, 1))
        self.register_buffer("cols", torch.randn(8, generator=generator).view(1, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ramp_rows = torch.linspace(0, 3, h).square().view(1, 1, h, 1) * self.rows
        ramp_cols = torch.linspace(0, 3, w).square().view(1, 1, 1, w) * self.cols
        return self.conv(x) + ramp_rows + ramp_cols


def geoseg_by_hand(model: nn.Module, frame: np.ndarray) -> torch.Tensor:
    """Logits of a frame as inference_uavid.py computes them (see the module docstring)."""
    height, width = frame.shape[:2]
    padded_h = height + (0 if height % WINDOW[0] == 0 else WINDOW[0] - height % WINDOW[0])
    padded_w = width + (0 if width % WINDOW[1] == 0 else WINDOW[1] - width % WINDOW[1])
    padded = np.zeros((padded_h, padded_w, 3), np.uint8)  # PadIfNeeded(value=[0, 0, 0])
    padded[padded_h - height :, padded_w - width :] = frame  # position='bottom_right'
    normal = (padded.astype(np.float32) - np.float32(MEAN) * 255) / (np.float32(STD) * 255)
    logits = torch.zeros(1, 8, padded_h, padded_w)
    with torch.no_grad():
        for y in range(0, padded_h, WINDOW[0]):
            for x in range(0, padded_w, WINDOW[1]):
                tile = torch.from_numpy(normal[y : y + WINDOW[0], x : x + WINDOW[1]])
                tile = tile.permute(2, 0, 1)[None]
                total = torch.zeros(1, 8, *WINDOW)
                for hflip in (False, True):
                    for vflip in (False, True):
                        seen = tile.flip(3) if hflip else tile
                        seen = seen.flip(2) if vflip else seen
                        out = model(seen)
                        out = out.flip(2) if vflip else out
                        total += out.flip(3) if hflip else out
                logits[..., y : y + WINDOW[0], x : x + WINDOW[1]] = total / 4
    return logits[..., padded_h - height :, padded_w - width :]


def decided(logits: torch.Tensor, margin: float = 1e-3) -> torch.Tensor:
    """Pixels whose best class leads the second by more than ``margin`` (no near-tie)."""
    top2 = logits.topk(2, dim=1).values
    return (top2[:, 0] - top2[:, 1])[0] > margin


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("uavid") / "raw"
    fake = write_full_frames(root)
    # the two frames as the raw test release holds them: uavid_test/seqN/Images/000000.png
    release = root / "uavid_v1.5_official_release_image"
    (release / "uavid_train").rename(release / "uavid_test")
    for seq in ("seq1", "seq2"):
        for label in (release / "uavid_test" / seq / "Labels").iterdir():
            label.unlink()
        (release / "uavid_test" / seq / "Labels").rmdir()
    return fake, release / "uavid_test"


def test_the_uavid_rule_is_geoseg_inference_uavid() -> None:
    options = inference_options(dataset_inference("uavid"))
    assert (options.patch_size, options.overlap, options.pad) == (WINDOW, 0.0, "top_left")
    assert (options.tta, options.passes, options.batch_size) == ("flip", 4, 2)


@pytest.mark.slow
def test_whole_frames_are_predicted_as_inference_uavid_does(frames, tmp_path) -> None:
    fake, test_dir = frames
    model = StandIn().eval()
    options = inference_options(dataset_inference("uavid"))
    inference = InferenceModel(model, MEAN, STD, options, torch.device("cpu"))
    by_hand = {stem: geoseg_by_hand(model, frame) for stem, frame in fake.images.items()}
    for stem, frame in fake.images.items():
        expected = by_hand[stem]
        ours = inference.logits(inference.normalize(np.moveaxis(frame, -1, 0)))
        assert ours.shape == expected.shape == (1, 8, *frame.shape[:2])
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)
    # windows laid otherwise (lossd's default: inside the frame, the last ones moved back) give
    # other logits: the comparison above sees where the windows lie
    shifted = InferenceModel(
        model, MEAN, STD, inference_options({**dataset_inference("uavid"), "pad": "none"}),
        torch.device("cpu"),
    )  # fmt: skip
    frame = fake.images["seq1_000000"]
    other = shifted.logits(shifted.normalize(np.moveaxis(frame, -1, 0)))
    assert not torch.allclose(other, by_hand["seq1_000000"], atol=1e-2)

    # The server archive, from a raw frame (scripts/predict.py --submission uavid RAW) and a
    # prepared whole test frame (the training run's test), one of each width.
    predictor = Predictor(inference, uavid.INFO, progress=False)
    prepared = tmp_path / "prepared"
    prepare_uavid(test_dir.parents[1], prepared, splits=["test"], progress=False)
    sources = [
        test_dir / "seq1" / "Images" / "000000.png",
        prepared / "test" / "images" / "seq2_000000_0_0.png",
    ]
    summary = predict_submission(predictor, sources, "uavid", tmp_path / "uavid.zip")
    assert len(summary.entries) == 2
    with zipfile.ZipFile(tmp_path / "uavid.zip") as zipped:
        assert sorted(zipped.namelist()) == ["seq1/Labels/000000.png", "seq2/Labels/000000.png"]
        for seq in ("seq1", "seq2"):
            logits = by_hand[f"{seq}_000000"]
            data = np.frombuffer(zipped.read(f"{seq}/Labels/000000.png"), np.uint8)
            colours = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            expected = _uavid_colours(logits[0].argmax(0).numpy())
            sure = decided(logits).numpy()
            assert sure.mean() > 0.99
            assert np.array_equal(colours[sure], expected[sure])
