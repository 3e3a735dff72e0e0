"""One tile: ground, roads, cars, plazas, clutter, buildings and trees, then the sensor.

The layers are drawn in this order, which is also the order of the random draws: it fixes
every tile.
"""

from typing import Any

import numpy as np

from lossd.data.synthetic._buildings import draw_buildings, place_buildings
from lossd.data.synthetic._cars import draw_car, draw_parking_lot, street_cars
from lossd.data.synthetic._clutter import draw_clutter
from lossd.data.synthetic._draws import Draws
from lossd.data.synthetic._roads import draw_plazas, draw_roads, layout_roads
from lossd.data.synthetic._scene import new_scene
from lossd.data.synthetic._sensor import apply_sensor
from lossd.data.synthetic._vegetation import draw_ground, draw_trees, layout_trees
from lossd.errors import InvalidOptionError

__all__ = ["MIN_TILE_SIZE", "check_int", "generate_tile"]


MIN_TILE_SIZE = 64


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum``.

    Raises:
        InvalidOptionError: Otherwise (bools and floats included).
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidOptionError(f"{name}={value!r}; expected an integer >= {minimum}")
    return int(value)


def generate_tile(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic aerial tile and its label mask.

    Args:
        rng: Random generator; the tile is a deterministic function of its state and ``size``.
        size: Tile side in pixels (>= 64). The pixel scale is fixed, so a larger tile shows a
            larger area rather than bigger objects.

    Returns:
        ``(image, mask)``: ``image`` is an ``size×size×3`` uint8 RGB array, ``mask`` an
        ``size×size`` uint8 array of class indices 0..5 (:data:`INFO`).

    Raises:
        InvalidOptionError: If ``rng`` is not a ``numpy.random.Generator`` or ``size < 64``.
    """
    if not isinstance(rng, np.random.Generator):
        raise InvalidOptionError(
            f"rng={rng!r}; expected a numpy.random.Generator (numpy.random.default_rng(seed))"
        )
    size = check_int(size, "size", MIN_TILE_SIZE)
    scene = new_scene(Draws(rng), size)
    draw_ground(scene)
    roads = layout_roads(scene)
    draw_roads(scene, roads)
    cars = draw_parking_lot(scene, roads)
    cars += street_cars(scene, roads)
    draw_plazas(scene)
    draw_clutter(scene)
    buildings = place_buildings(scene)
    for car in cars:
        draw_car(scene, car)
    draw_buildings(scene, buildings)
    draw_trees(scene, layout_trees(scene, roads))
    return apply_sensor(scene), scene.mask
