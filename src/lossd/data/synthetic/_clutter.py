"""Clutter on low vegetation: bare soil, groups of containers and tarps, pools."""

import math

import numpy as np

from lossd.data.synthetic._geometry import polygon_mask, rect_corners
from lossd.data.synthetic._info import CLUTTER, LOW_VEGETATION
from lossd.data.synthetic._materials import POOL, SOIL
from lossd.data.synthetic._scene import Scene, paint

__all__ = ["draw_clutter"]


def _paint_clutter(scene: Scene, points: np.ndarray, base: np.ndarray, texture: float) -> None:
    """Clutter inside a polygon, on low vegetation only; later buildings keep clear of it."""
    polygon = polygon_mask(points, scene.size)
    if polygon is None:
        return
    box, inside = polygon
    inside = inside & (scene.mask[box.window] == LOW_VEGETATION)
    scene.blocked[box.window] |= inside
    colour = base * (1.0 + scene.fine[box.window] * np.float32(texture))
    paint(scene, inside, colour, CLUTTER, box.window)


def draw_clutter(scene: Scene) -> None:
    """Bare soil, groups of containers and tarps, or a pool."""
    rng, size = scene.rng, scene.size
    for _ in range(int(rng.poisson(2.0 * scene.area_factor))):
        centre = rng.uniform(0.0, size, 2).astype(np.float32)
        axis = scene.u if rng.random() < 0.5 else scene.v
        kind = rng.random()
        if kind < 0.5:
            angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, int(rng.integers(6, 10))))
            radii = rng.uniform(10.0, 32.0) * rng.uniform(0.6, 1.0, angles.size)
            points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            soil = SOIL * np.float32(rng.uniform(0.8, 1.15))
            _paint_clutter(scene, points.astype(np.float32), soil, texture=0.12)
        elif kind < 0.85:
            for _ in range(int(rng.integers(1, 5))):
                offset = rng.normal(0.0, 7.0, 2).astype(np.float32)
                half_len, half_wid = float(rng.uniform(2.0, 7.0)), float(rng.uniform(1.5, 4.0))
                corners = rect_corners(centre + offset, axis, half_len, half_wid)
                colour = rng.uniform(0.15, 0.9, (3, 1, 1)).astype(np.float32)
                _paint_clutter(scene, corners, colour, 0.04)
        else:
            corners = rect_corners(
                centre, axis, float(rng.uniform(5, 10)), float(rng.uniform(3, 6))
            )
            _paint_clutter(scene, corners, POOL, texture=0.03)
