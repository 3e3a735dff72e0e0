"""Low vegetation (the grass background) and trees in street rows and garden clusters.

Crowns are lumpy, leafy and lit from the sun side; they may overhang roads and roofs, where
the tree label wins.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lossd.data.synthetic._draws import Draws, smooth_noise
from lossd.data.synthetic._geometry import disc_box
from lossd.data.synthetic._info import BUILDING, CAR, IMPERVIOUS, TREE
from lossd.data.synthetic._materials import DRY_GRASS, GRASS, TREE_GREENS
from lossd.data.synthetic._roads import Road
from lossd.data.synthetic._scene import Scene, darken, paint

__all__ = ["draw_ground", "draw_trees", "layout_trees"]


def draw_ground(scene: Scene) -> None:
    """Low vegetation everywhere: grass with dry patches, mottling and fine texture."""
    rng, size = scene.rng, scene.size
    tint = np.float32(1.0) + rng.normal(0.0, 0.05, (3, 1, 1)).astype(np.float32)
    dryness = smooth_noise(rng, size, 56) * np.float32(0.45) + np.float32(rng.uniform(-0.1, 0.3))
    dryness = np.clip(dryness, 0.0, 1.0)
    mottling = smooth_noise(rng, size, 14) * np.float32(0.07) + scene.fine * np.float32(0.03)
    np.multiply(dryness, (DRY_GRASS - GRASS) * tint, out=scene.image)
    scene.image += GRASS * tint
    scene.image *= 1.0 + mottling


@dataclass(frozen=True)
class _Tree:
    x: float
    y: float
    radius: float
    colour: np.ndarray
    height: float


def _random_tree(rng: Draws, x: float, y: float, radius: float) -> _Tree:
    colour = TREE_GREENS[int(rng.integers(len(TREE_GREENS)))] * np.float32(rng.uniform(0.85, 1.15))
    return _Tree(x, y, radius, colour, float(rng.uniform(6.0, 16.0)))


def _tree_allowed(scene: Scene, x: float, y: float) -> bool:
    """Trunks rarely stand on roofs or roads; crowns may still overhang them."""
    col, row = round(x), round(y)
    if not (0 <= col < scene.size and 0 <= row < scene.size):
        return True
    label = scene.mask[row, col]
    if label == BUILDING:
        return scene.rng.random() < 0.1
    if label in (IMPERVIOUS, CAR):
        return scene.rng.random() < 0.15
    return True


def _street_trees(scene: Scene, road: Road) -> list[_Tree]:
    """A row of similar trees along one or both sides of a road (on the verge or sidewalk)."""
    rng = scene.rng
    trees = []
    for side in (-1.0, 1.0):
        if rng.random() >= 0.45:
            continue
        spacing = float(rng.uniform(20.0, 34.0))
        radius = float(rng.uniform(6.0, 11.0))
        across = side * (road.width / 2 + road.verge / 2 + road.sidewalk + rng.uniform(-1, 3))
        along = -scene.reach + float(rng.uniform(0.0, spacing))
        while along < scene.reach:
            if road.start <= along <= road.stop and rng.random() < 0.85:
                x, y = map(float, road.point(scene, along, across))
                r = radius * float(rng.uniform(0.85, 1.15))
                if _tree_allowed(scene, x, y):
                    trees.append(_random_tree(rng, x, y, r))
            along += spacing
    return trees


def layout_trees(scene: Scene, roads: Sequence[Road]) -> list[_Tree]:
    """Street-tree rows along some roads and clusters of crowns in gardens and parks."""
    rng, size = scene.rng, scene.size
    trees = [tree for road in roads for tree in _street_trees(scene, road)]
    for _ in range(int(rng.poisson(6.0 * scene.area_factor))):
        cx, cy = rng.uniform(0.0, size, 2)
        spread = float(rng.uniform(4.0, 26.0))
        for _ in range(int(rng.integers(1, 11))):
            x, y = float(cx + rng.normal(0, spread)), float(cy + rng.normal(0, spread))
            if _tree_allowed(scene, x, y):
                trees.append(_random_tree(rng, x, y, float(rng.uniform(7.0, 19.0))))
    return trees


def _draw_crown(scene: Scene, tree: _Tree) -> None:
    """A lumpy crown (radius modulated by a noise field), lit from the sun side, leafy."""
    box = disc_box(tree.x, tree.y, tree.radius * 1.4, scene.size)
    if box is None:
        return
    dx, dy = box.x - np.float32(tree.x), box.y - np.float32(tree.y)
    dist = np.sqrt(dx * dx + dy * dy)
    inside = dist <= np.float32(tree.radius) * (1.0 + scene.lumps[box.window] * np.float32(0.14))
    toward_sun = -(dx * scene.sun[0] + dy * scene.sun[1]) / np.float32(tree.radius)
    shade = 1.0 + 0.3 * toward_sun - 0.3 * (dist / np.float32(tree.radius)) ** 2
    shade *= 1.0 + scene.leafy[box.window] * np.float32(0.22)
    colour = tree.colour * np.clip(shade, 0.3, 1.8)
    paint(scene, inside, colour, TREE, box.window)


def draw_trees(scene: Scene, trees: Sequence[_Tree]) -> None:
    """Tree shadows on everything below, then the crowns (later crowns cover earlier ones)."""
    size = scene.size
    shadow = np.zeros((size, size), np.uint8)
    sun_x, sun_y = (float(c) * scene.shadow_scale for c in scene.sun)
    for tree in trees:
        centre = (
            round((tree.x + sun_x * tree.height) * 16),
            round((tree.y + sun_y * tree.height) * 16),
        )
        cv2.circle(shadow, centre, round(tree.radius * 16), 1, -1, cv2.LINE_8, shift=4)
    darken(scene, shadow.view(bool))
    for tree in trees:
        _draw_crown(scene, tree)
