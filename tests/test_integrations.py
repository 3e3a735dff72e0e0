"""Lossd inside the libraries researchers already train with (issue 22, marker `integration`).

The libraries come from the `lossd[integrations]` extra (pinned in requirements.lock), which
`make test` installs: segmentation_models_pytorch (a ``smp.Unet`` trained with
``smp.losses.DiceLoss`` + Lossd) and torchgeo (a ``SemanticSegmentationTask`` whose documented
override point, ``configure_losses``, adds Lossd, fitted by Lightning). No download: encoders
without weights, an in-memory dataset. docs/api.md shows the same code. mmsegmentation needs a
compiled mmcv and is documented in prose only (docs/api.md, "mmsegmentation").
"""

import pytest
import torch
from torch import Tensor, nn

from lossd.losses import DistanceLoss, DistanceMapsTransform

pytestmark = pytest.mark.integration

NUM_CLASSES = 3


def toy_batch(batch: int = 4, size: int = 32, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Images that carry a blocky target (one colour per class plus noise), and the target."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, NUM_CLASSES, (batch, size // 8, size // 8), generator=generator)
    target = coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)
    palette = torch.rand(NUM_CLASSES, 3, generator=generator)
    images = palette[target].permute(0, 3, 1, 2)
    return images + 0.2 * torch.randn(images.shape, generator=generator), target


def test_smp_unet_trains_with_smp_dice_plus_lossd():
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=NUM_CLASSES)
    dice = smp.losses.DiceLoss(mode="multiclass")
    lossd = DistanceLoss(NUM_CLASSES)
    maps_of = DistanceMapsTransform(NUM_CLASSES)  # as a Dataset would, once per sample
    images, target = toy_batch()
    maps = torch.stack([maps_of.maps(mask) for mask in target])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    totals, errors = [], []
    for _ in range(8):
        logits = model(images)
        total = dice(logits, target) + 1.0 * lossd(logits, target, maps)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        totals.append(float(total.detach()))
        errors.append(float((logits.argmax(1) != target).float().mean()))
    assert all(torch.isfinite(torch.tensor(totals)))
    assert min(totals[-3:]) < totals[0]
    assert min(errors[-3:]) < errors[0]


class _BasePlusLossd(nn.Module):
    """``base(y_hat, y) + lambda_d · Lossd(y_hat, y)`` (the objective of docs/lossd.md, step 6)."""

    def __init__(self, base: nn.Module, lossd: nn.Module, lambda_d: float) -> None:
        super().__init__()
        self.base, self.lossd, self.lambda_d = base, lossd, lambda_d

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return self.base(y_hat, y) + self.lambda_d * self.lossd(y_hat, y)


def test_torchgeo_segmentation_task_fits_with_lossd(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, Dataset
    from torchgeo.trainers import SemanticSegmentationTask

    class LossdSegmentationTask(SemanticSegmentationTask):
        """torchgeo's task with Lossd added to its configured loss (``configure_losses``)."""

        lambda_d = 1.0

        def configure_losses(self) -> None:
            super().configure_losses()
            ignore_index = self.hparams["ignore_index"]
            lossd = DistanceLoss(self.hparams["num_classes"], ignore_index=ignore_index)
            self.criterion = _BasePlusLossd(self.criterion, lossd, self.lambda_d)

    images, target = toy_batch(batch=8)

    class Samples(Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, index: int) -> dict[str, Tensor]:
            return {"image": images[index], "mask": target[index]}

    class TinyDataModule(pl.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return DataLoader(Samples(), batch_size=4, shuffle=False)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(Samples(), batch_size=4)

    losses: list[float] = []

    class RecordLoss(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    torch.manual_seed(0)
    task = LossdSegmentationTask(
        model="unet",
        backbone="resnet18",
        weights=None,
        in_channels=3,
        num_classes=NUM_CLASSES,
        loss="ce",
        lr=3e-3,
    )
    assert isinstance(task.criterion, _BasePlusLossd)
    trainer = pl.Trainer(
        max_steps=8,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[RecordLoss()],
    )
    trainer.fit(task, datamodule=TinyDataModule())
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < losses[0]
