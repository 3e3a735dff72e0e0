"""Cars: parked along kerbs, in parking lots and driving, never touching each other.

A car is 11-15 × 5.4-6.6 px, about 4.5 × 1.9 m at 0.3 m/px.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lossd.data.synthetic._draws import Draws, random_sign, weighted_index
from lossd.data.synthetic._geometry import (
    fill_polygons,
    polygon_mask,
    rect_corners,
    unit_vector,
)
from lossd.data.synthetic._info import CAR, IMPERVIOUS
from lossd.data.synthetic._materials import ASPHALT, CAR_CDF, CAR_COLOURS, GLASS, PAINT
from lossd.data.synthetic._roads import Road
from lossd.data.synthetic._scene import Scene, darken, paint

__all__ = ["draw_car", "draw_parking_lot", "street_cars"]


@dataclass(frozen=True)
class _Car:
    centre: np.ndarray
    axis: np.ndarray  # points to the front
    half_len: float
    half_wid: float


def _random_car(rng: Draws, centre: np.ndarray, axis: np.ndarray, jitter: float = 0.03) -> _Car:
    """A car of 11-15 × 5.4-6.6 px (about 4.5 × 1.9 m at 0.3 m/px), facing either way."""
    angle = math.atan2(float(axis[1]), float(axis[0])) + float(rng.normal(0.0, jitter))
    angle += math.pi if rng.random() < 0.5 else 0.0
    return _Car(
        centre, unit_vector(angle), float(rng.uniform(5.5, 7.5)), float(rng.uniform(2.7, 3.3))
    )


def draw_car(scene: Scene, car: _Car) -> None:
    """A car with a cast shadow, windscreen, rear window, lit roof and darker flanks."""
    rng = scene.rng
    corners = rect_corners(car.centre, car.axis, car.half_len, car.half_wid)
    shadow = polygon_mask(corners + scene.sun * np.float32(2.5), scene.size)
    if shadow is not None:
        box, inside = shadow
        darken(scene, inside & (scene.mask[box.window] != CAR), box.window)
    body = polygon_mask(corners, scene.size)
    if body is None:
        return
    box, inside = body
    dx, dy = box.x - car.centre[0], box.y - car.centre[1]
    along = (dx * car.axis[0] + dy * car.axis[1]) / np.float32(car.half_len)
    across = np.abs(dy * car.axis[0] - dx * car.axis[1])
    cabin = (along >= -0.52) & (along <= 0.18) & (across < car.half_wid - 1.0)
    shade = np.where(across > car.half_wid - 1.0, np.float32(0.75), np.float32(1.0))
    shade = np.where(cabin, np.float32(1.08), shade)
    glass = ((along > 0.18) & (along < 0.48)) | ((along < -0.52) & (along > -0.78))
    glass &= across <= car.half_wid - 0.6
    lacquer = CAR_COLOURS[weighted_index(rng, CAR_CDF)] * np.float32(rng.uniform(0.9, 1.1))
    colour = np.where(glass, GLASS, lacquer * shade)
    paint(scene, inside, colour, CAR, box.window)


def _clear_of_junctions(scene: Scene, roads: Sequence[Road], index: int, car: _Car) -> bool:
    """Whether a car on road ``index`` keeps off the ends of its road and off other roads."""
    road = roads[index]
    rel = car.centre - scene.to_pixel(0.0, 0.0)
    along = float(rel @ road.direction(scene))
    if not road.start + car.half_len + 1 <= along <= road.stop - car.half_len - 1:
        return False
    for j, other in enumerate(roads):
        across = float(rel @ (scene.v if other.axis == 0 else scene.u)) - other.offset
        if j != index and abs(across) < other.width / 2 + other.sidewalk + car.half_len + 2:
            return False
    return True


def _parking_sides(rng: Draws, road: Road) -> tuple[float, ...]:
    """Kerbs with parked cars: both on wide roads, one on medium roads, none on narrow ones."""
    if road.width >= 19:
        return tuple(side for side in (-1.0, 1.0) if rng.random() < 0.8)
    if road.width >= 12 and rng.random() < 0.8:
        return (random_sign(rng),)
    return ()


def street_cars(scene: Scene, roads: Sequence[Road]) -> list[_Car]:
    """Cars parked along the kerbs and a few driving in the other lanes.

    Parked cars are at least 19 px apart along the kerb (cars are at most 15 px long) and
    lanes at least 10 px apart across the road (cars are at most 6.6 px wide), so two cars
    never touch, not even after rasterisation.
    """
    rng = scene.rng
    cars: list[_Car] = []
    for index, road in enumerate(roads):
        parking = _parking_sides(rng, road)
        for side in (-1.0, 1.0):
            parked = side in parking
            if not parked and road.width < 19:
                continue
            occupancy = float(rng.uniform(0.25, 0.85)) if parked else 0.04
            spacing = float(rng.uniform(19.0, 25.0)) if parked else 30.0
            across = side * (road.width / 2 - 4.0 if parked else road.width / 4)
            along = -scene.reach + float(rng.uniform(0.0, spacing))
            while along < scene.reach:
                wanted = rng.random() < occupancy
                position = along + float(rng.uniform(-0.5, 0.5))
                along += spacing
                if wanted:
                    centre = road.point(scene, position, across)
                    car = _random_car(rng, centre, road.direction(scene))
                    if _clear_of_junctions(scene, roads, index, car):
                        cars.append(car)
    return cars


def draw_parking_lot(scene: Scene, roads: Sequence[Road]) -> list[_Car]:
    """Sometimes a paved lot beside a road, with stall lines and a row of cars."""
    rng = scene.rng
    if not roads or rng.random() >= 0.35:
        return []
    road = roads[int(rng.integers(len(roads)))]
    side = random_sign(rng)
    depth = float(rng.uniform(28.0, 40.0))
    length = float(rng.uniform(50.0, 130.0)) * (scene.size / 256.0) ** 0.5
    middle = float(rng.uniform(-0.35, 0.35)) * scene.size
    lo, hi = max(middle - length / 2, road.start), min(middle + length / 2, road.stop)
    if hi - lo < 12.0:
        return []
    far = road.outer + depth
    lot = fill_polygons(scene.size, [road.rect(scene, lo, hi, side * road.outer, side * far)])
    lot &= ~scene.blocked  # never over another road
    tone = ASPHALT * np.float32(rng.uniform(0.95, 1.2))
    paint(scene, lot, tone * (1.0 + scene.fine * np.float32(0.05)), IMPERVIOUS)
    scene.blocked |= lot
    stall = float(rng.uniform(10.5, 12.0))
    row = road.outer + depth - 9.0
    near, back = side * (row - 7.5), side * (row + 7.5)
    starts = np.arange(lo, hi, stall)
    lines_mask = (
        fill_polygons(scene.size, road.rects(scene, starts, starts + 1.0, near, back)) & lot
    )
    np.copyto(scene.image, PAINT * np.float32(0.9), where=lines_mask)
    occupancy = float(rng.uniform(0.3, 0.9))
    facing = (scene.v if road.axis == 0 else scene.u) * np.float32(side)
    cars = []
    for k in range(int((hi - lo) // stall)):
        position = lo + (k + 0.5) * stall
        if rng.random() < occupancy:
            car = _random_car(rng, road.point(scene, position, side * row), facing, jitter=0.02)
            if _within(scene, lot, car):
                cars.append(car)
    return cars


def _within(scene: Scene, region: np.ndarray, car: _Car) -> bool:
    """Whether the corners of a car that fall inside the tile all lie in ``region``."""
    corners = rect_corners(car.centre, car.axis, car.half_len, car.half_wid)
    for x, y in corners.tolist():
        col, row = int(x), int(y)
        if 0 <= row < scene.size and 0 <= col < scene.size and not region[row, col]:
            return False
    return True
