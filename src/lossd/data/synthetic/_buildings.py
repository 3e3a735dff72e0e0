"""Buildings: houses, L shapes, terraces, perimeter blocks and sheds, their roofs and shadows.

Buildings are placed on free ground at least 3 px apart, mostly aligned with the street grid;
pitched roofs get two or four planes lit by the sun of the tile. Sizes and shares of the
building kinds are chosen by eye; not measured.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lossd.data.synthetic._draws import Draws, random_sign, weighted_index
from lossd.data.synthetic._geometry import (
    fill_polygons,
    perpendicular,
    polygon_mask,
    rect_corners,
    unit_vector,
)
from lossd.data.synthetic._info import BUILDING, IMPERVIOUS, LOW_VEGETATION
from lossd.data.synthetic._materials import FLAT_ROOFS, PAVING, ROOF_CDF, ROOFS
from lossd.data.synthetic._scene import Scene, darken, paint, paving_shade

__all__ = ["draw_buildings", "place_buildings"]


@dataclass(frozen=True)
class _Part:
    """One roof: a rotated rectangle with its roof type, colour and height (for the shadow)."""

    centre: np.ndarray
    axis: np.ndarray  # direction of the ridge
    half_len: float
    half_wid: float
    roof: str  # "gable", "hip" or "flat"
    colour: np.ndarray
    height: float

    def corners(self, grow: float = 0.0) -> np.ndarray:
        return rect_corners(self.centre, self.axis, self.half_len + grow, self.half_wid + grow)


def _roof_material(rng: Draws) -> tuple[np.ndarray, str, float]:
    """Colour, roof type and height of a building: pitched tiles or a flat membrane."""
    index = weighted_index(rng, ROOF_CDF)
    colour = (ROOFS[index] * np.float32(rng.uniform(0.88, 1.12))).astype(np.float32)
    if index in FLAT_ROOFS:
        return colour, "flat", float(rng.uniform(14, 32))
    return colour, "hip" if rng.random() < 0.3 else "gable", float(rng.uniform(8, 16))


def _single(rng: Draws, centre: np.ndarray, axis: np.ndarray) -> list[_Part]:
    """A detached house or, with a flat roof, a larger apartment or commercial block."""
    colour, roof, height = _roof_material(rng)
    big = 1.3 if roof == "flat" else 1.0
    half_wid = float(rng.uniform(10, 22)) * big
    half_len = max(float(rng.uniform(14, 42)) * big, half_wid + 2)
    return [_Part(centre, axis, half_len, half_wid, roof, colour, height)]


def _shed(rng: Draws, centre: np.ndarray, axis: np.ndarray) -> list[_Part]:
    """A garage or garden shed: a small building of 8-18 × 8-14 px."""
    colour, roof, _ = _roof_material(rng)
    half_wid = float(rng.uniform(4, 7))
    half_len = max(float(rng.uniform(4, 9)), half_wid)
    roof = "flat" if roof == "flat" or rng.random() < 0.5 else "gable"
    return [_Part(centre, axis, half_len, half_wid, roof, colour, float(rng.uniform(4, 8)))]


def _l_shape(rng: Draws, centre: np.ndarray, axis: np.ndarray) -> list[_Part]:
    """Main wing plus a perpendicular side wing at one end (its roof meets the main roof)."""
    colour, roof, height = _roof_material(rng)
    half_wid = float(rng.uniform(9, 17))
    half_len = max(float(rng.uniform(16, 40)), half_wid + 4)
    wing_wid = float(rng.uniform(7, half_wid))
    wing_len = half_wid + float(rng.uniform(12, 28))
    normal = perpendicular(axis)
    wing_centre = (
        centre
        + axis * np.float32(random_sign(rng) * (half_len - wing_wid))
        + normal * np.float32(random_sign(rng) * wing_len / 2)
    )
    return [
        _Part(centre, axis, half_len, half_wid, roof, colour, height),
        _Part(wing_centre, normal, wing_len / 2, wing_wid, roof, colour, height),
    ]


def _row_houses(rng: Draws, centre: np.ndarray, axis: np.ndarray) -> list[_Part]:
    """2-4 terraced houses whose walls touch, each with its own roof shade or material."""
    colour, roof, height = _roof_material(rng)
    half_wid = float(rng.uniform(9, 16))
    lengths = rng.uniform(8, 17, int(rng.integers(2, 5)))
    normal = perpendicular(axis)
    start = -float(lengths.sum())
    parts = []
    for half_len in map(float, lengths):
        if rng.random() < 0.35:
            colour, roof, height = _roof_material(rng)
        part_centre: np.ndarray = centre + axis * np.float32(start + half_len)
        part_centre = part_centre + normal * np.float32(rng.uniform(-1.5, 1.5))
        start += 2 * half_len
        parts.append(
            _Part(
                part_centre,
                axis,
                half_len,
                half_wid + float(rng.uniform(-1.5, 1.5)),
                "flat" if roof == "flat" else "gable",
                colour * np.float32(rng.uniform(0.9, 1.1)),
                height * float(rng.uniform(0.8, 1.25)),
            )
        )
    return parts


def _perimeter_block(rng: Draws, centre: np.ndarray, axis: np.ndarray) -> list[_Part]:
    """Four wings around a courtyard (a European city block); the wings touch at the corners."""
    colour, roof, height = _roof_material(rng)
    roof = "flat" if roof == "flat" else "gable"
    half_len, half_wid = float(rng.uniform(36, 60)), float(rng.uniform(30, 48))
    wing = float(rng.uniform(6, 9))
    normal = perpendicular(axis)
    parts = []
    for side in (-1.0, 1.0):
        long_centre = centre + normal * np.float32(side * (half_wid - wing))
        parts.append(_Part(long_centre, axis, half_len, wing, roof, colour, height))
        short_centre = centre + axis * np.float32(side * (half_len - wing))
        short_half = half_wid - 2 * wing
        tone = colour * np.float32(rng.uniform(0.92, 1.08))
        parts.append(_Part(short_centre, normal, short_half, wing, roof, tone, height))
    return parts


_BUILDING_KINDS = (_single, _l_shape, _row_houses, _perimeter_block, _shed)
_BUILDING_CDF = tuple(itertools.accumulate([0.38, 0.22, 0.22, 0.10, 0.08]))


def _random_building(scene: Scene, centre: np.ndarray) -> list[_Part]:
    """A random building aligned with the street grid (or, rarely, at any angle)."""
    rng = scene.rng
    angle = math.atan2(float(scene.u[1]), float(scene.u[0]))
    angle += math.pi / 2 if rng.random() < 0.5 else 0.0
    angle += float(rng.normal(0.0, 0.03)) if rng.random() > 0.1 else float(rng.uniform(0, math.pi))
    kind = _BUILDING_KINDS[weighted_index(rng, _BUILDING_CDF)]
    return kind(rng, centre, unit_vector(angle))


def _pave_around(scene: Scene, parts: Sequence[_Part], apron: float) -> None:
    """A paved courtyard or driveway apron around a building (on low vegetation only)."""
    paving = PAVING * np.float32(scene.rng.uniform(0.9, 1.1))
    shade = paving_shade(scene)
    for part in parts:
        polygon = polygon_mask(part.corners(apron), scene.size)
        if polygon is not None:
            box, inside = polygon
            inside = inside & (scene.mask[box.window] == LOW_VEGETATION)
            paint(scene, inside, paving * shade[box.window], IMPERVIOUS, box.window)


def _scaled(part: _Part, centre: np.ndarray, factor: float) -> _Part:
    """The part shrunk by ``factor`` towards the building centre (same roof and height)."""
    shifted = centre + (part.centre - centre) * np.float32(factor)
    half_len, half_wid = part.half_len * factor, part.half_wid * factor
    return _Part(shifted, part.axis, half_len, half_wid, part.roof, part.colour, part.height)


def _reach(parts: Sequence[_Part], centre: np.ndarray, grow: float) -> float:
    """Distance from ``centre`` to the farthest corner of the parts grown by ``grow``."""
    offsets = np.concatenate([part.corners(grow) for part in parts]) - centre
    return float(np.sqrt((offsets * offsets).sum(axis=1).max()))


def _fit(
    scene: Scene, parts: list[_Part], centre: np.ndarray, setback: float, clearance: float
) -> list[_Part] | None:
    """The building, a smaller version that fits the gap, or None.

    ``clearance`` is the distance from ``centre`` to the nearest blocked pixel: a building
    whose grown corners all lie closer than that is free without rasterising it.
    """
    if _reach(parts, centre, setback) + 1.0 <= clearance or not _collides(scene, parts, setback):
        return parts
    factor = (clearance - 1.0 - math.sqrt(2.0) * setback) / _reach(parts, centre, 0.0)
    if factor >= 0.7:
        smaller = [_scaled(part, centre, min(factor, 0.9)) for part in parts]
        if _reach(smaller, centre, setback) + 1.0 <= clearance:
            return smaller
    smaller = [_scaled(part, centre, 0.7) for part in parts]
    return None if _collides(scene, smaller, setback) else smaller


def _collides(scene: Scene, parts: Sequence[_Part], setback: float) -> bool:
    """Whether the building, grown by ``setback``, touches a road, lot or other building."""
    outlines = [part.corners(setback) for part in parts]
    for part, corners in zip(parts, outlines, strict=True):  # cheap pre-test of 5 points
        for x, y in [*corners.tolist(), part.centre.tolist()]:
            col, row = int(x), int(y)
            if 0 <= row < scene.size and 0 <= col < scene.size and scene.blocked[row, col]:
                return True
    for corners in outlines:
        polygon = polygon_mask(corners, scene.size)
        if polygon is not None and (scene.blocked[polygon[0].window] & polygon[1]).any():
            return True
    return False


def place_buildings(scene: Scene) -> list[list[_Part]]:
    """Try random buildings; keep those clear of roads, lots and (by >= 3 px) other buildings.

    Centres are drawn among the pixels at least 9 px away from anything blocked (a distance
    transform, updated around each new building), so few attempts are wasted on hopeless
    places, and a building that does not fit is shrunk to the room around its centre.
    """
    rng, size = scene.rng, scene.size
    clearance = _clearance(scene.blocked)
    roomy = np.flatnonzero(clearance >= 9.0)
    buildings: list[list[_Part]] = []
    for _ in range(round(60 * scene.area_factor) + 3):
        if roomy.size == 0:
            break
        row, col = divmod(int(roomy[rng.integers(roomy.size)]), size)
        if clearance[row, col] < 6.0:
            continue  # buildings placed meanwhile came close
        centre = np.array([col, row], np.float32) + rng.uniform(-0.5, 0.5, 2).astype(np.float32)
        setback = float(rng.uniform(1.0, 6.0))
        building = _random_building(scene, centre)
        parts = _fit(scene, building, centre, setback, float(clearance[row, col]) - 0.71)
        if parts is None:
            continue
        if rng.random() < 0.55:
            _pave_around(scene, parts, float(rng.uniform(3.0, setback + 5.0)))
        _block(scene, parts, clearance)
        buildings.append(parts)
    return buildings


_CLEARANCE_CAP = 48.0
"""Clearances are only tracked up to this distance (px); bigger buildings are rasterised."""


def _clearance(blocked: np.ndarray) -> np.ndarray:
    """Lower bound of the distance (px) from each pixel to the nearest blocked one, capped.

    OpenCV's 5×5 chamfer approximation of the Euclidean distance (within 2 %, several times
    faster than the exact transform) is scaled by 0.98 so that it never overestimates.
    """
    free = (~blocked).astype(np.uint8)
    distance = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_5)
    capped: np.ndarray = np.minimum(distance * np.float32(0.98), np.float32(_CLEARANCE_CAP))
    return capped


def _block(scene: Scene, parts: Sequence[_Part], clearance: np.ndarray) -> None:
    """Block a new building (grown by 2 px) and lower the clearances around it.

    Only a window reaching ``_CLEARANCE_CAP`` beyond the building can change, so the distance
    transform is redone there alone: placement stays linear in the tile area.
    """
    windows = []
    for part in parts:
        polygon = polygon_mask(part.corners(2.0), scene.size)
        if polygon is not None:
            box, inside = polygon
            scene.blocked[box.window] |= inside
            windows.append(box)
    if not windows:
        return
    cap = math.ceil(_CLEARANCE_CAP)
    x0, y0 = max(min(b.x0 for b in windows) - cap, 0), max(min(b.y0 for b in windows) - cap, 0)
    x1 = min(max(b.x1 for b in windows) + cap, scene.size)
    y1 = min(max(b.y1 for b in windows) + cap, scene.size)
    window = (slice(y0, y1), slice(x0, x1))
    np.minimum(clearance[window], _clearance(scene.blocked[window]), out=clearance[window])


def _roof_shade(scene: Scene, part: _Part, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Brightness of each roof pixel: sun-facing planes of pitched roofs, flat-roof details."""
    rng = scene.rng
    if part.roof == "flat":
        shade = np.ones(np.broadcast_shapes(along.shape, across.shape), np.float32)
        edge = (np.abs(across) > part.half_wid - 1.3) | (np.abs(along) > part.half_len - 1.3)
        shade[edge] = 1.12
        for _ in range(int(rng.integers(0, 4))):
            a0 = float(rng.uniform(-0.7, 0.7)) * part.half_len
            b0 = float(rng.uniform(-0.6, 0.6)) * part.half_wid
            unit = np.abs(along - a0) < rng.uniform(1.5, 3.5)
            unit &= np.abs(across - b0) < rng.uniform(1.5, 3.0)
            shade[unit] = 1.25
        return shade
    normal = perpendicular(part.axis)
    towards = -float(normal @ scene.sun)  # > 0 when the plane on the +normal side faces the sun
    facing = np.where(across >= 0, towards, -towards)
    if part.roof == "hip":
        end = np.abs(along) - (part.half_len - part.half_wid) > np.abs(across)
        towards_end = -float(part.axis @ scene.sun)
        facing = np.where(end, np.where(along >= 0, towards_end, -towards_end), facing)
    shade = (1.0 + float(rng.uniform(0.2, 0.35)) * facing).astype(np.float32)
    shade[np.abs(across) < 0.7] *= np.float32(1.06)  # ridge
    shade *= 1.0 + np.float32(0.035) * np.sin(across * np.float32(2.0 * math.pi / 3.0))  # tile rows
    return shade


def _draw_roof(scene: Scene, part: _Part) -> None:
    polygon = polygon_mask(part.corners(), scene.size)
    if polygon is None:
        return
    box, inside = polygon
    dx, dy = box.x - part.centre[0], box.y - part.centre[1]
    along = dx * part.axis[0] + dy * part.axis[1]
    across = dy * part.axis[0] - dx * part.axis[1]
    shade = _roof_shade(scene, part, along, across)
    shade = shade * (1.0 + scene.fine[box.window] * np.float32(0.04))
    paint(scene, inside, part.colour * shade, BUILDING, box.window)


def draw_buildings(scene: Scene, buildings: Sequence[Sequence[_Part]]) -> None:
    """Roofs first, then the shadows they cast on everything that is not a roof."""
    size = scene.size
    for parts in buildings:
        for part in parts:
            _draw_roof(scene, part)
    hulls = []
    for parts in buildings:
        for part in parts:
            corners = part.corners()
            cast = corners + scene.sun * np.float32(part.height * scene.shadow_scale)
            hulls.append(cv2.convexHull(np.concatenate([corners, cast]))[:, 0, :])
    darken(scene, fill_polygons(size, hulls) & (scene.mask != BUILDING))
