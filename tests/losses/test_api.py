"""One public API for every loss (issue 22): a module class and a function of the same
arguments, binary masks, any dtype, torch.compile, optional accelerators, loader maps."""

import inspect
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import lossd.losses as L
import lossd.losses.functional as LF
from lossd.errors import DataFormatError
from lossd.losses import DistanceLoss, DistanceMapsTransform, TargetDistanceMaps
from tests.losses._specs import IDS, IGNORE, NUM_CLASSES, SPECS, blocky_case


def value_and_grad(function, logits, target, **kwargs):
    leaf = logits.detach().clone().requires_grad_()
    value = function(leaf, target, **kwargs)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def test_every_loss_of_the_package_has_a_spec_and_a_function():
    classes = {name for name in L.__all__ if name.endswith("Loss")}
    assert classes == {spec.module.__name__ for spec in SPECS}
    functions = {name for name in LF.__all__ if name.endswith("_loss")}
    assert functions == {spec.function.__name__ for spec in SPECS}
    assert set(LF.__all__) <= set(L.__all__), "lossd.losses must re-export every function"
    assert all(getattr(L, name) is getattr(LF, name) for name in LF.__all__)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_function_takes_the_arguments_of_the_class(spec):
    init = inspect.signature(spec.module.__init__).parameters
    expected = {name: p.default for name, p in init.items() if name not in ("self", "num_classes")}
    function = inspect.signature(spec.function).parameters
    keywords = {
        name: p.default for name, p in function.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    if spec.function is LF.distance_loss:
        assert keywords.pop("maps") is None
    assert keywords == expected
    assert list(function)[:2] == ["logits", "target"]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_module_equals_function(spec):
    logits, target = blocky_case(seed=1)
    module_value, module_grad = value_and_grad(spec.build(), logits, target)
    function_value, function_grad = value_and_grad(spec.call, logits, target)
    # the same code path; CPU reductions may round differently with the buffers' alignment
    torch.testing.assert_close(module_value, function_value, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(module_grad, function_grad, rtol=1e-6, atol=1e-8)


# --- binary masks ---------------------------------------------------------------------------


def test_one_channel_logits_are_sigmoid_probabilities():
    x = torch.linspace(-6, 6, 25).view(1, 1, 5, 5)
    two = L._functional.binary_as_two_classes(x)
    probs = torch.softmax(two, dim=1)
    torch.testing.assert_close(probs[:, 1:], torch.sigmoid(x))
    torch.testing.assert_close(probs[:, :1], 1 - torch.sigmoid(x))
    assert torch.equal(two.argmax(dim=1), (x[:, 0] > 0).long())


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_binary_masks_equal_the_two_class_form(spec):
    # docs/api.md, "Binary masks": logits x [B, 1, H, W] are the two classes [-x/2, x/2].
    logits, target = blocky_case(seed=2, num_classes=2)
    x = (logits[:, 1:] - logits[:, :1]).contiguous()  # one logit per pixel
    two_class = torch.cat([-x / 2, x / 2], dim=1)
    value, grad = value_and_grad(spec.call, x, target)
    two_value, two_grad_full = value_and_grad(spec.call, two_class, target)
    # chain rule of x -> [-x/2, x/2]
    two_grad = (two_grad_full[:, 1:] - two_grad_full[:, :1]) / 2
    torch.testing.assert_close(value, two_value, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, two_grad, rtol=1e-5, atol=1e-7)
    module_value = spec.build(num_classes=2)(x, target)
    torch.testing.assert_close(module_value, two_value, rtol=1e-6, atol=1e-7)


def test_binary_targets_may_be_bool_or_carry_a_channel():
    logits, target = blocky_case(seed=3, num_classes=2, ignore=False)
    x = logits[:, 1:] - logits[:, :1]
    expected = LF.dice_loss(x, target)
    assert torch.equal(LF.dice_loss(x, target.bool()), expected)
    assert torch.equal(LF.dice_loss(x, target.unsqueeze(1)), expected)


def test_distance_loss_needs_two_classes_for_one_channel_logits():
    logits, target = blocky_case(seed=4, num_classes=2, ignore=False)
    with pytest.raises(DataFormatError, match=r"\[B, 3, H, W\]"):
        DistanceLoss(3)(logits[:, :1], target)


# --- any dtype and device ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_any_float_dtype_is_computed_in_float32_or_wider(spec, dtype):
    logits, target = blocky_case(seed=5)
    low = logits.to(dtype)
    value, grad = value_and_grad(spec.call, low, target)
    reference, reference_grad = value_and_grad(spec.call, low.float(), target)
    assert grad.dtype == dtype
    # float64: float64 math against float32 math; else the float32 loss of the widened logits
    wide = dtype == torch.float64
    tol = {"rtol": 1e-4 if wide else 1e-6, "atol": 1e-6 if wide else 1e-8}
    torch.testing.assert_close(value.double(), reference.double(), **tol)
    torch.testing.assert_close(grad.double(), reference_grad.to(dtype).double(), **tol)


# --- torch.compile ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_torch_compile_gives_the_eager_value_and_gradient(spec):
    # Inductor on the CPU (gcc). The no-gradient target-side helpers (maps, pixel lists,
    # OpenCV / scipy calls) are kept out of the graph (lossd.losses._functional.eager);
    # everything with a gradient is compiled. docs/api.md, "torch.compile".
    torch._dynamo.reset()
    logits, target = blocky_case(seed=6, size=16, block=4)
    loss = spec.build()
    value, grad = value_and_grad(loss, logits, target)
    compiled_value, compiled_grad = value_and_grad(torch.compile(loss), logits, target)
    torch.testing.assert_close(compiled_value, value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled_grad, grad, rtol=1e-4, atol=1e-6)


# --- optional accelerators (scipy, OpenCV) ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("hd_dt", "cv2"),
        ("cldice", "cv2"),
        ("boundary_kervadec", "scipy.ndimage"),
        ("abl", "scipy.ndimage"),
        ("hd_dt", "scipy.ndimage"),
    ],
)
def test_losses_without_the_optional_accelerators_give_the_same_values(monkeypatch, name, missing):
    pytest.importorskip(missing)  # without it both runs take the fallback: nothing compared
    spec = next(s for s in SPECS if s.name == name)
    logits, target = blocky_case(seed=7)
    value, grad = value_and_grad(spec.call, logits, target)
    monkeypatch.setitem(sys.modules, missing, None)
    if missing == "scipy.ndimage":
        monkeypatch.setitem(sys.modules, "cv2", None)
    fallback_value, fallback_grad = value_and_grad(spec.call, logits, target)
    torch.testing.assert_close(fallback_value, value, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(fallback_grad, grad, rtol=1e-5, atol=1e-7)


def test_import_lossd_losses_loads_no_training_stack():
    # The lean install in a fresh venv is tests/test_packaging.py; here the same import in
    # this (full) environment must not load the training stack or the accelerators either.
    code = (
        "import sys, lossd.losses, lossd.losses.functional, lossd.losses.loader_maps;"
        "heavy = {'hydra', 'wandb', 'rasterio', 'albumentations', 'pandas', 'omegaconf',"
        " 'timm', 'cv2', 'scipy', 'matplotlib', 'PIL', 'torchvision'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


# --- maps from the data loader -----------------------------------------------------------------


class _Masks(Dataset):
    def __init__(self, target, transform):
        self.masks = [mask.numpy().astype(np.uint8) for mask in target]
        self.transform = transform

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, index):
        mask = self.masks[index]
        return {"mask": torch.from_numpy(mask), "maps": self.transform(mask)}


@pytest.mark.parametrize("num_workers", [0, 1])
@pytest.mark.parametrize("ignore_index", [None, IGNORE])
def test_maps_from_the_loader_give_the_same_value_and_gradient(num_workers, ignore_index):
    logits, target = blocky_case(seed=8, batch=3, ignore=ignore_index is not None)
    transform = DistanceMapsTransform(NUM_CLASSES, ignore_index=ignore_index)
    loader = DataLoader(_Masks(target, transform), batch_size=3, num_workers=num_workers)
    batch = next(iter(loader))
    assert batch["maps"].shape == (3, NUM_CLASSES + 1, 24, 24)
    assert batch["maps"].dtype == torch.uint8
    loss = DistanceLoss(NUM_CLASSES, ignore_index=ignore_index)
    inside = value_and_grad(loss, logits, target)
    for maps in (batch["maps"], TargetDistanceMaps.from_packed(batch["maps"], 50, ignore_index)):
        from_loader = value_and_grad(loss, logits, batch["mask"].long(), maps=maps)
        assert torch.equal(from_loader[0], inside[0]) and torch.equal(from_loader[1], inside[1])
        function = value_and_grad(
            LF.distance_loss, logits, target, ignore_index=ignore_index, maps=maps
        )
        assert torch.equal(function[0], inside[0]) and torch.equal(function[1], inside[1])


def test_loader_maps_of_each_sample_stack_to_the_batch_maps():
    _, target = blocky_case(seed=9, batch=4)
    transform = DistanceMapsTransform(NUM_CLASSES, max_iter=7, ignore_index=IGNORE)
    stacked = np.stack([transform(mask.numpy()) for mask in target])
    batch = L.target_distance_maps(target, NUM_CLASSES, 7, IGNORE).packed()
    assert np.array_equal(stacked, batch.numpy())
    # binary masks: num_classes 2, bool masks accepted
    binary = target.clamp(max=1)
    assert np.array_equal(
        DistanceMapsTransform(2)(binary[0].numpy().astype(bool)),
        DistanceMapsTransform(2)(binary[0].numpy()),
    )


def test_albumentations_adapter_adds_the_maps_of_the_augmented_mask():
    albumentations = pytest.importorskip("albumentations")
    _, target = blocky_case(seed=10, batch=1)
    mask = target[0].numpy().astype(np.uint8)
    image = np.zeros((*mask.shape, 3), dtype=np.uint8)
    transform = DistanceMapsTransform(NUM_CLASSES, ignore_index=IGNORE)
    pipeline = albumentations.Compose(
        [albumentations.HorizontalFlip(p=1.0), transform.albumentations()]
    )
    sample = pipeline(image=image, mask=mask)
    assert np.array_equal(sample["mask"], mask[:, ::-1])
    assert np.array_equal(sample["distance_maps"], transform(mask[:, ::-1]))
    restored = pickle.loads(pickle.dumps(pipeline))  # DataLoader workers under spawn
    assert np.array_equal(
        restored(image=image, mask=mask)["distance_maps"], transform(mask[:, ::-1])
    )


def test_packed_maps_of_the_wrong_shape_are_rejected():
    logits, target = blocky_case(seed=11)
    with pytest.raises(DataFormatError, match="maps"):
        DistanceLoss(NUM_CLASSES, ignore_index=IGNORE)(logits, target, torch.zeros(2, 3, 24, 24))
    with pytest.raises(DataFormatError, match="maps"):
        DistanceLoss(NUM_CLASSES, ignore_index=IGNORE)(
            logits, target, torch.zeros(2, 5, 24, 24, dtype=torch.uint8)
        )
