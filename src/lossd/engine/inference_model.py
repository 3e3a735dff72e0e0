"""The inference model: a trained network with its normalisation, precision, TTA and windows.

One object shared by ``evaluate`` (prepared splits with labels) and ``predict`` (user images and
rasters): whatever runs the network on images at test time goes through :meth:`logits` or
:meth:`forward`, so both give the same numbers for the same image.
"""

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lossd.engine.checkpoint import CheckpointMeta, load_checkpoint
from lossd.engine.inference import InferenceOptions, predict_logits, tta_logits
from lossd.engine.model_io import input_channels, model_from_checkpoint
from lossd.engine.runtime import autocast_dtype, resolve_device
from lossd.errors import InvalidOptionError

__all__ = ["InferenceModel"]


@dataclass
class InferenceModel:
    """A network in eval mode with everything needed to turn images into logits.

    Args:
        model: The network in eval mode, on ``device``.
        mean: Normalisation mean per band (0..1 scale), as in training.
        std: Normalisation std per band.
        options: Tiling, blending and TTA.
        device: Where the network runs.
        amp_dtype: Autocast dtype on CUDA (None: float32).
        meta: The checkpoint's metadata, when built from one.
    """

    model: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    options: InferenceOptions
    device: torch.device
    amp_dtype: torch.dtype | None = None
    meta: CheckpointMeta | None = None

    def __post_init__(self) -> None:
        self.in_channels = input_channels(self.model)
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise InvalidOptionError(
                f"normalisation has {len(self.mean)} means and {len(self.std)} stds for a "
                f"network taking {self.in_channels} bands"
            )
        self._mean = torch.tensor(self.mean, device=self.device).view(-1, 1, 1) * 255.0
        self._scale = 1.0 / (torch.tensor(self.std, device=self.device).view(-1, 1, 1) * 255.0)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        options: InferenceOptions,
        device: str | torch.device = "auto",
        *,
        precision: str = "32",
        expect_model: str | None = None,
        expect_num_classes: int | None = None,
    ) -> "InferenceModel":
        """Load a training checkpoint file and rebuild its network (:meth:`from_loaded`).

        Raises:
            CheckpointError: If the checkpoint is unreadable, written by an older lossd, or
                holds another model or number of classes than expected.
            InvalidOptionError: For a bad device or precision.
        """
        loaded = load_checkpoint(checkpoint)
        return cls.from_loaded(
            loaded,
            checkpoint,
            options,
            device,
            precision=precision,
            expect_model=expect_model,
            expect_num_classes=expect_num_classes,
        )

    @classmethod
    def from_loaded(
        cls,
        checkpoint: dict[str, Any],
        path: str | Path,
        options: InferenceOptions,
        device: str | torch.device = "auto",
        *,
        precision: str = "32",
        expect_model: str | None = None,
        expect_num_classes: int | None = None,
    ) -> "InferenceModel":
        """Rebuild the network of a loaded checkpoint with its normalisation.

        The network comes from :mod:`lossd.engine.model_io`, mean and std from the checkpoint's
        :class:`CheckpointMeta`; ``path`` is for messages.

        Raises:
            CheckpointError: As :meth:`from_checkpoint`.
            InvalidOptionError: For a bad device or precision.
        """
        torch_device = device if isinstance(device, torch.device) else resolve_device(device)
        meta = CheckpointMeta.from_checkpoint(checkpoint, path)
        model = model_from_checkpoint(
            checkpoint, path, torch_device, expect_model, expect_num_classes
        )
        return cls(
            model=model,
            mean=meta.mean,
            std=meta.std,
            options=options,
            device=torch_device,
            amp_dtype=autocast_dtype(precision, torch_device),
            meta=meta,
        )

    def autocast(self) -> AbstractContextManager[Any]:
        """The autocast context of :attr:`amp_dtype` (a no-op in float32)."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def normalize(self, bands: np.ndarray) -> Tensor:
        """uint8 ``[C, h, w]`` (the network's band order) -> normalised ``[1, C, h, w]``."""
        tensor = torch.from_numpy(np.ascontiguousarray(bands)).to(self.device)
        return ((tensor.float() - self._mean) * self._scale).unsqueeze(0)

    def forward(self, images: Tensor) -> Tensor:
        """TTA logits of normalised windows ``[N, C, h, w]`` (float32), no sliding window."""
        options = self.options
        with self.autocast():
            return tta_logits(
                self.model,
                images,
                options.tta,
                options.tta_scales,
                rotations=options.tta_rotations,
                interpolation=options.interpolation,
            )

    @torch.inference_mode()
    def logits(self, images: Tensor) -> Tensor:
        """Logits of normalised images ``[B, C, H, W]``: sliding window and TTA of the options."""
        options = self.options
        with self.autocast():
            return predict_logits(
                self.model,
                images,
                tta=options.tta,
                scales=options.tta_scales,
                patch_size=options.patch_size,
                overlap=options.overlap,
                batch_size=options.batch_size,
                blend=options.blend,
                rotations=options.tta_rotations,
                interpolation=options.interpolation,
                pad=options.pad,
                pad_value=self.black,
            )

    @property
    def black(self) -> tuple[float, ...]:
        """A black pixel (0 in every band) after normalisation: the padding of ``pad``."""
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))
