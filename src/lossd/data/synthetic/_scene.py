"""The scene of one tile while it is drawn: canvas, label mask, street grid, sun and textures.

Every layer paints into the same :class:`Scene`; :func:`paint` sets colour and label together,
:func:`darken` casts a shadow (labels unchanged).
"""

import math
from dataclasses import dataclass

import numpy as np

from lossd.data.synthetic._draws import Draws, fine_noise, smooth_noise
from lossd.data.synthetic._geometry import Window, perpendicular, stripes, unit_vector
from lossd.data.synthetic._info import LOW_VEGETATION
from lossd.data.synthetic._materials import SHADOW_TINT

__all__ = ["Scene", "darken", "free_point", "new_scene", "paint", "paving_shade"]


@dataclass
class Scene:
    """Canvas and shared state of one tile while it is drawn."""

    rng: Draws
    size: int
    image: np.ndarray  # float32 3×H×W in 0..1 (planar: numpy broadcasts fast over H×W)
    mask: np.ndarray  # uint8 H×W class indices
    u: np.ndarray  # unit vector of the street grid
    v: np.ndarray  # perpendicular unit vector
    coord_u: np.ndarray  # H×W coordinate along u, origin at the tile centre
    coord_v: np.ndarray  # H×W coordinate along v
    sun: np.ndarray  # unit vector along which shadows fall
    shadow_scale: float  # shadow length per pixel of object height
    blocked: np.ndarray  # bool H×W: no new building may cover it
    fine: np.ndarray  # shared fine texture (sigma 0.7 px)
    leafy: np.ndarray  # coarser texture for tree crowns (sigma 1.3 px)
    lumps: np.ndarray  # smooth noise with 5 px features: irregular crown outlines
    paving_shade: np.ndarray | None = None  # block-grid shading of paving, built on first use

    @property
    def area_factor(self) -> float:
        """Tile area relative to a 256×256 tile (object counts scale with it)."""
        return (self.size / 256.0) ** 2

    @property
    def reach(self) -> float:
        """Half extent of the tile along any direction (a bit more than half the diagonal)."""
        return 0.75 * self.size

    def to_pixel(self, along_u: float, along_v: float) -> np.ndarray:
        """Pixel (x, y) of street-grid coordinates (along u, along v)."""
        centre = np.float32((self.size - 1) / 2.0)
        return centre + self.u * np.float32(along_u) + self.v * np.float32(along_v)


def new_scene(rng: Draws, size: int) -> Scene:
    """An empty scene: grid angle, sun, shadow length and textures drawn in this order."""
    u = unit_vector(float(rng.uniform(0.0, math.pi)))
    v = perpendicular(u)
    grid = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2.0)
    xs, ys = grid[None, :], grid[:, None]
    return Scene(
        rng=rng,
        size=size,
        image=np.zeros((3, size, size), np.float32),
        mask=np.full((size, size), LOW_VEGETATION, np.uint8),
        u=u,
        v=v,
        coord_u=xs * u[0] + ys * u[1],
        coord_v=xs * v[0] + ys * v[1],
        sun=unit_vector(float(rng.uniform(0.0, 2.0 * math.pi))),
        shadow_scale=float(rng.uniform(0.45, 1.1)),
        blocked=np.zeros((size, size), bool),
        fine=fine_noise(rng, size, 0.7),
        leafy=fine_noise(rng, size, 1.3),
        lumps=smooth_noise(rng, size, 5),
    )


_WHOLE: Window = (slice(None), slice(None))


def paint(
    scene: Scene, inside: np.ndarray, colour: np.ndarray, label: int, window: Window = _WHOLE
) -> None:
    """Set image and label where ``inside`` (boolean, window-sized) is true.

    ``colour`` is a 3×1×1 colour or a window-sized 3×h×w array.
    """
    np.copyto(scene.image[(slice(None), *window)], colour, where=inside)
    np.copyto(scene.mask[window], np.uint8(label), where=inside)


def darken(scene: Scene, inside: np.ndarray, window: Window = _WHOLE) -> None:
    """Apply the bluish shadow tint where ``inside`` is true (labels unchanged)."""
    image = scene.image[(slice(None), *window)]
    np.multiply(image, np.where(inside, SHADOW_TINT, np.float32(1.0)), out=image)


def paving_shade(scene: Scene) -> np.ndarray:
    """Brightness of paving stones: a faint block grid aligned with the street grid."""
    if scene.paving_shade is None:
        grid = stripes(scene.coord_u, 5.0, 0.9) | stripes(scene.coord_v, 5.0, 0.9)
        shade = 1.0 + scene.fine * np.float32(0.035) - grid.astype(np.float32) * np.float32(0.06)
        scene.paving_shade = shade
    return scene.paving_shade


def free_point(scene: Scene, tries: int = 8) -> np.ndarray | None:
    """A random point (x, y) of the tile that is not blocked, or None after ``tries`` misses."""
    for _ in range(tries):
        x, y = scene.rng.uniform(0.0, scene.size, 2)
        if not scene.blocked[int(y), int(x)]:
            return np.array([x, y], np.float32)
    return None
