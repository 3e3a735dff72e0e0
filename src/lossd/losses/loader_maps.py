"""Lossd's target distance maps computed in the data loader, once per sample.

The maps of Lossd (docs/lossd.md, "How it is computed") depend on the ground truth only, not on
the network, so they can be computed where the mask is loaded: in the ``DataLoader`` workers,
in parallel with the training step, instead of in the loss. :class:`DistanceMapsTransform` is
a plain callable on one mask (``numpy`` ``[H, W]`` or a tensor) that returns the packed maps
``uint8 [C + 1, H, W]``; a ``DataLoader``'s default collate stacks them into the batch
``[B, C + 1, H, W]`` that :class:`~lossd.losses.DistanceLoss` and
:func:`~lossd.losses.distance_loss` take as ``maps=``, with the same value and gradient as maps
computed inside (the maps of an image do not depend on the other images of its batch).

:meth:`DistanceMapsTransform.albumentations` returns the same transform as the last step of an
``albumentations.Compose``: it adds the maps of the augmented mask under the key
``"distance_maps"``. albumentations is imported then, never by ``import lossd.losses``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from lossd.losses._functional import check_ignore_index, check_max_iter, check_num_classes
from lossd.losses.distance import target_distance_maps

if TYPE_CHECKING:
    from lossd.losses._albumentations import AlbumentationsDistanceMaps

__all__ = ["DistanceMapsTransform"]


class DistanceMapsTransform:
    """Packed Lossd target maps of one mask, for ``DataLoader`` workers and albumentations.

    ``transform(mask)`` returns ``uint8 [C + 1, H, W]`` (``int16`` or wider when
    ``max_iter > 127``): channels ``0..C-1`` are the distance of every pixel to the region of
    each class, channel ``C`` its depth inside its own region
    (:class:`~lossd.losses.TargetDistanceMaps`, :meth:`~lossd.losses.TargetDistanceMaps.packed`).
    Give the loss the same ``max_iter`` and ``ignore_index``: the packed batch carries no
    options, so the loss checks only its shape.

    Args:
        num_classes: Number of classes ``C`` (binary masks: 2).
        max_iter: Distance cap of docs/lossd.md, step 2 (the loss's ``max_iter``, 50).
        ignore_index: Label value of ignored pixels (the loss's ``ignore_index``), or None.

    Raises:
        InvalidOptionError: For an option out of range.

    Example (docs/api.md, "Maps from the data loader")::

        transform = DistanceMapsTransform(num_classes=6, ignore_index=255)
        maps = transform(mask)              # in Dataset.__getitem__; mask: uint8 [H, W]
        loss = DistanceLoss(6, ignore_index=255)
        value = loss(logits, target, maps)  # maps: the collated [B, 7, H, W] batch
    """

    def __init__(
        self, num_classes: int, max_iter: int = 50, ignore_index: int | None = None
    ) -> None:
        check_num_classes(num_classes)
        check_max_iter(max_iter)
        check_ignore_index(ignore_index)
        self.num_classes = num_classes
        self.max_iter = max_iter
        self.ignore_index = ignore_index

    def __repr__(self) -> str:
        return (
            f"DistanceMapsTransform(num_classes={self.num_classes}, max_iter={self.max_iter}, "
            f"ignore_index={self.ignore_index})"
        )

    def maps(self, mask: np.ndarray | Tensor) -> Tensor:
        """The packed maps as a CPU tensor ``[C + 1, H, W]``.

        Raises:
            DataFormatError: If ``mask`` is not an integer ``[H, W]`` map with values in
                ``0..C-1`` or ``ignore_index``.
        """
        array = mask if isinstance(mask, Tensor) else np.ascontiguousarray(mask)
        target = torch.as_tensor(array)  # flipped views (negative strides) are copied
        if target.dtype == torch.bool:
            target = target.to(torch.uint8)
        if target.ndim == 3 and target.shape[-1] == 1:  # H×W×1 masks of image libraries
            target = target[..., 0]
        maps = target_distance_maps(
            target.cpu().unsqueeze(0), self.num_classes, self.max_iter, self.ignore_index
        )
        return maps.packed()[0]

    def __call__(self, mask: np.ndarray | Tensor) -> np.ndarray:
        """Return the packed maps of ``mask`` (``[H, W]`` class indices) as a numpy array."""
        return self.maps(mask).numpy()

    def albumentations(self, key: str = "distance_maps") -> AlbumentationsDistanceMaps:
        """This transform as an albumentations step that adds ``key`` (imports albumentations).

        Place it last in the ``Compose`` (after every spatial step), so that the maps are
        those of the augmented mask.
        """
        from lossd.losses._albumentations import AlbumentationsDistanceMaps

        return AlbumentationsDistanceMaps(self, key=key)
