"""Material colours and frequencies of roofs and cars.

RGB in 0..1, planar (3×1×1, broadcast over the 3×H×W canvas), chosen by eye from aerial
orthophotos; none of the colours or frequencies is measured.
"""

import itertools

import numpy as np

__all__ = [
    "ASPHALT",
    "CAR_CDF",
    "CAR_COLOURS",
    "DRY_GRASS",
    "FLAT_ROOFS",
    "GLASS",
    "GRASS",
    "PAINT",
    "PAVING",
    "POOL",
    "RED_PAVING",
    "ROOFS",
    "ROOF_CDF",
    "SHADOW_TINT",
    "SOIL",
    "TREE_GREENS",
]


def _rgb(*values: float) -> np.ndarray:
    """A colour as a 3×1×1 float32 array, broadcastable over the planar 3×H×W canvas."""
    return np.array(values, np.float32).reshape(3, 1, 1)


# Material colours (RGB in 0..1), chosen by eye from aerial orthophotos; not measured.
GRASS = _rgb(0.36, 0.44, 0.22)
DRY_GRASS = _rgb(0.50, 0.47, 0.30)
ASPHALT = _rgb(0.38, 0.38, 0.39)
PAVING = _rgb(0.62, 0.60, 0.56)
RED_PAVING = _rgb(0.60, 0.48, 0.42)
PAINT = _rgb(0.88, 0.88, 0.85)
TREE_GREENS = np.array(
    [[0.15, 0.27, 0.11], [0.21, 0.31, 0.12], [0.12, 0.22, 0.14], [0.18, 0.25, 0.10]], np.float32
).reshape(-1, 3, 1, 1)
ROOFS = np.array(
    [
        [0.64, 0.31, 0.22],  # terracotta
        [0.55, 0.27, 0.20],  # red tiles
        [0.44, 0.26, 0.21],  # brown tiles
        [0.29, 0.29, 0.31],  # anthracite
        [0.52, 0.45, 0.39],  # grey-brown
        [0.64, 0.64, 0.62],  # light grey membrane / gravel (flat)
        [0.78, 0.78, 0.76],  # white membrane (flat)
    ],
    np.float32,
).reshape(-1, 3, 1, 1)
ROOF_CDF = tuple(itertools.accumulate([0.24, 0.18, 0.12, 0.14, 0.08, 0.16, 0.08]))
FLAT_ROOFS = (5, 6)
CAR_COLOURS = np.array(
    [
        [0.88, 0.88, 0.88],  # white
        [0.10, 0.10, 0.11],  # black
        [0.62, 0.63, 0.65],  # silver
        [0.38, 0.39, 0.41],  # grey
        [0.12, 0.18, 0.38],  # dark blue
        [0.62, 0.10, 0.09],  # red
        [0.20, 0.28, 0.22],  # dark green
        [0.80, 0.72, 0.40],  # beige / yellow
    ],
    np.float32,
).reshape(-1, 3, 1, 1)
CAR_CDF = tuple(itertools.accumulate([0.24, 0.2, 0.2, 0.14, 0.08, 0.07, 0.03, 0.04]))
GLASS = _rgb(0.08, 0.09, 0.11)
SHADOW_TINT = _rgb(0.40, 0.45, 0.58)
SOIL = _rgb(0.52, 0.42, 0.32)
POOL = _rgb(0.35, 0.68, 0.78)
