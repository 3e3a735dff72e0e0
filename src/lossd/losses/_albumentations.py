"""The albumentations adapter of :class:`~lossd.losses.DistanceMapsTransform`.

Imported only by :meth:`~lossd.losses.DistanceMapsTransform.albumentations`, so that
``import lossd.losses`` does not load albumentations (an optional dependency,
``pip install lossd[train]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import albumentations as A

if TYPE_CHECKING:
    from lossd.losses.loader_maps import DistanceMapsTransform

__all__ = ["AlbumentationsDistanceMaps"]


class AlbumentationsDistanceMaps(A.BasicTransform):  # type: ignore[misc]  # untyped library
    """Adds the packed Lossd maps of the (augmented) ``mask`` under ``key``; changes nothing.

    Args:
        transform: The :class:`~lossd.losses.DistanceMapsTransform` that computes the maps.
        key: Name of the added entry of the sample dict.
    """

    def __init__(self, transform: DistanceMapsTransform, key: str = "distance_maps") -> None:
        super().__init__(p=1.0)
        self.transform = transform
        self.key = key

    @property
    def targets(self) -> dict[str, Any]:
        """Targets albumentations may route here (the mask only; it is read, not changed)."""
        return {"mask": self.apply_to_mask}

    def apply_to_mask(self, mask: Any, **params: Any) -> Any:
        """The mask itself: it is read, not changed."""
        return mask

    def apply_with_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Return the sample with the maps of its ``mask`` added under ``key``."""
        if "mask" not in kwargs or kwargs["mask"] is None:
            raise KeyError(f"{type(self).__name__} needs the 'mask' of the sample")
        return {**kwargs, self.key: self.transform(kwargs["mask"])}

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Names of the ``__init__`` arguments (albumentations' serialisation)."""
        return ("transform", "key")
