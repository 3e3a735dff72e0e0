"""Street grid: roads with sidewalks, grass verges and dashed centre lines, and paved plazas.

Road widths (10-16 px narrow, 18-28 px wide) and spacings (90-240 px) are chosen by eye for
about 0.3 m/px; not measured.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lossd.data.synthetic._draws import Draws, smooth_noise
from lossd.data.synthetic._geometry import coverage, fill_polygons, polygon_mask, rect_corners
from lossd.data.synthetic._info import IMPERVIOUS, LOW_VEGETATION
from lossd.data.synthetic._materials import ASPHALT, GRASS, PAINT, PAVING, RED_PAVING
from lossd.data.synthetic._scene import Scene, free_point, paint, paving_shade

__all__ = ["Road", "draw_plazas", "draw_roads", "layout_roads"]


@dataclass(frozen=True)
class Road:
    """A straight road of the street grid, with optional sidewalks and grass verges."""

    axis: int  # 0: runs along u (offset along v); 1: runs along v (offset along u)
    offset: float
    width: float
    sidewalk: float
    verge: float
    start: float = -math.inf  # limits along the road (a T-junction ends it at another road)
    stop: float = math.inf

    @property
    def outer(self) -> float:
        """Half width including verge and sidewalk."""
        return self.width / 2 + self.verge + self.sidewalk

    def direction(self, scene: Scene) -> np.ndarray:
        """Unit vector along the road."""
        return scene.u if self.axis == 0 else scene.v

    def point(self, scene: Scene, along: float, across: float) -> np.ndarray:
        """Pixel (x, y) at a position along the road and an offset across it."""
        if self.axis == 0:
            return scene.to_pixel(along, self.offset + across)
        return scene.to_pixel(self.offset + across, along)

    def rects(
        self, scene: Scene, lo: np.ndarray, hi: np.ndarray, near: float, far: float
    ) -> np.ndarray:
        """Corners (n×4×2, x, y) of rectangles ``lo..hi`` along, ``near..far`` across the road."""
        along = np.stack([lo, hi, hi, lo], axis=-1).astype(np.float32)[..., None]
        across = np.array([near, near, far, far], np.float32)[:, None] + np.float32(self.offset)
        if self.axis == 1:
            along, across = across, along
        centre = np.float32((scene.size - 1) / 2.0)
        corners: np.ndarray = centre + along * scene.u + across * scene.v
        return corners

    def rect(self, scene: Scene, lo: float, hi: float, near: float, far: float) -> np.ndarray:
        """Corners (4×2, x, y) of the rectangle ``lo..hi`` along and ``near..far`` across."""
        corners: np.ndarray = self.rects(scene, np.array([lo]), np.array([hi]), near, far)[0]
        return corners

    def band(self, scene: Scene, half_width: float) -> np.ndarray:
        """Polygon of the road's strip within ``half_width`` of its centre line."""
        lo, hi = max(self.start, -scene.reach), min(self.stop, scene.reach)
        return self.rect(scene, lo, hi, -half_width, half_width)


def _road_offsets(rng: Draws, reach: float, gap: tuple[float, float], skip: float) -> list[float]:
    """Positions of parallel roads across the tile, ``gap`` apart, some of them left out."""
    offsets = []
    position = -reach + float(rng.uniform(0.0, gap[1]))
    while position < reach:
        if rng.random() >= skip:
            offsets.append(position)
        position += float(rng.uniform(*gap))
    return offsets


def _random_road(rng: Draws, axis: int, offset: float, start: float, stop: float) -> Road:
    width = float(rng.uniform(18, 28) if rng.random() < 0.45 else rng.uniform(10, 16))
    sidewalk = float(rng.uniform(3, 6)) if rng.random() < 0.65 else 0.0
    verge = float(rng.uniform(3, 7)) if sidewalk and rng.random() < 0.4 else 0.0
    return Road(axis, offset, width, sidewalk, verge, start, stop)


def layout_roads(scene: Scene) -> list[Road]:
    """A street grid: roads along u, crossing roads along v, some ending at a T-junction."""
    rng, size = scene.rng, scene.size
    u_offsets = _road_offsets(rng, scene.reach, (90.0, 200.0), skip=0.15)
    if not u_offsets and rng.random() < 0.9:
        u_offsets = [float(rng.uniform(-0.3, 0.3)) * size]
    roads = [_random_road(rng, 0, t, -math.inf, math.inf) for t in u_offsets]
    for s in _road_offsets(rng, scene.reach, (110.0, 240.0), skip=0.3):
        start, stop = -math.inf, math.inf
        if u_offsets and rng.random() < 0.4:
            junction = u_offsets[int(rng.integers(len(u_offsets)))]
            if rng.random() < 0.5:
                start = junction
            else:
                stop = junction
        roads.append(_random_road(rng, 1, s, start, stop))
    return roads


def _dashes(scene: Scene, road: Road) -> np.ndarray:
    """Polygons (n×4×2) of the dashed centre line: 7 px dashes every 14 px, 1.6 px wide."""
    lo, hi = max(road.start, -scene.reach), min(road.stop, scene.reach)
    starts = np.arange(math.floor(lo / 14.0) * 14.0, hi, 14.0)
    starts = starts[starts + 7.0 > lo]
    return road.rects(scene, np.maximum(starts, lo), np.minimum(starts + 7.0, hi), -0.8, 0.8)


def draw_roads(scene: Scene, roads: Sequence[Road]) -> None:
    """Sidewalks, grass verges, asphalt and dashed centre lines of every road."""
    rng, size = scene.rng, scene.size
    if not roads:
        return
    outer = [fill_polygons(size, [r.band(scene, r.outer)]) for r in roads]
    outer_count = coverage(outer)
    sidewalks = fill_polygons(size, [r.band(scene, r.outer) for r in roads if r.sidewalk])
    paving = (PAVING if rng.random() < 0.7 else RED_PAVING) * paving_shade(scene)
    paint(scene, sidewalks, paving, IMPERVIOUS)
    for i, road in enumerate(roads):
        if road.verge:
            others = outer_count > outer[i]  # pixels of other roads' strips
            verge = fill_polygons(size, [road.band(scene, road.width / 2 + road.verge)]) & ~others
            grass = GRASS * (1.0 + scene.fine * np.float32(0.04))
            paint(scene, verge, grass, LOW_VEGETATION)
    asphalts = [fill_polygons(size, [r.band(scene, r.width / 2)]) for r in roads]
    asphalt_count = coverage(asphalts)
    tone = ASPHALT * np.float32(rng.uniform(0.85, 1.15))
    wear = smooth_noise(rng, size, 24) * np.float32(0.05) + scene.fine * np.float32(0.05)
    paint(scene, asphalt_count > 0, tone * (1.0 + wear), IMPERVIOUS)
    for i, road in enumerate(roads):
        if road.width >= 18:
            lines = fill_polygons(size, _dashes(scene, road)) & ~(asphalt_count > asphalts[i])
            np.copyto(scene.image, PAINT, where=lines)
    scene.blocked |= outer_count > 0


def draw_plazas(scene: Scene) -> None:
    """Paved squares and yards aligned with the street grid, on free ground."""
    rng = scene.rng
    shade = paving_shade(scene)
    for _ in range(int(rng.poisson(0.6 * scene.area_factor))):
        centre = free_point(scene)
        if centre is None:
            continue
        axis = scene.u if rng.random() < 0.5 else scene.v
        half_len, half_wid = float(rng.uniform(15, 45)), float(rng.uniform(12, 32))
        polygon = polygon_mask(rect_corners(centre, axis, half_len, half_wid), scene.size)
        if polygon is None:
            continue
        box, inside = polygon
        inside = inside & ~scene.blocked[box.window]
        paving = (PAVING if rng.random() < 0.6 else RED_PAVING) * np.float32(rng.uniform(0.9, 1.1))
        paint(scene, inside, paving * shade[box.window], IMPERVIOUS, box.window)
        scene.blocked[box.window] |= inside
