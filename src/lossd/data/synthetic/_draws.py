"""Random draws and noise fields of the tile generator.

:class:`Draws` wraps a ``numpy.random.Generator`` with buffered scalar draws (the generator
makes a few thousand per tile); the noise fields are the textures every layer reuses.
The order of the draws fixes every tile: changing it changes the output (bump
``GENERATOR_VERSION`` in :mod:`lossd.data.synthetic.prepare`).
"""

import bisect
import math
from collections.abc import Sequence
from typing import Any, overload

import cv2
import numpy as np

__all__ = ["Draws", "fine_noise", "random_sign", "smooth_noise", "weighted_index"]

_Size = int | tuple[int, ...]
"""Shape argument of the array draws, as numpy takes it."""


class Draws:
    """Random draws from a ``numpy.random.Generator``, with fast scalar draws.

    A tile needs a few thousand scalar draws, and numpy's per-call overhead (about 2 µs)
    would dominate the generator's run time, so scalars come from a buffered block of
    uniform numbers. Calls with a ``size`` go to the generator. Same methods and meaning
    as ``numpy.random.Generator``; deterministic for a given generator state.
    """

    __slots__ = ("_pool", "generator")

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator
        self._pool: list[float] = []

    @overload
    def random(self) -> float: ...
    @overload
    def random(self, size: _Size, dtype: Any = np.float64) -> np.ndarray: ...
    def random(self, size: _Size | None = None, dtype: Any = np.float64) -> float | np.ndarray:
        """A uniform number in [0, 1) (or an array of them if ``size`` is given)."""
        if size is not None:
            return self.generator.random(size, dtype=dtype)
        if not self._pool:
            self._pool = self.generator.random(256).tolist()
        return self._pool.pop()

    @overload
    def uniform(self, low: float, high: float) -> float: ...
    @overload
    def uniform(self, low: float, high: float, size: _Size) -> np.ndarray: ...
    def uniform(self, low: float, high: float, size: _Size | None = None) -> float | np.ndarray:
        """A uniform number in [low, high) (or an array of them if ``size`` is given)."""
        if size is not None:
            return self.generator.uniform(low, high, size)
        return low + (high - low) * self.random()

    @overload
    def normal(self, loc: float, scale: float) -> float: ...
    @overload
    def normal(self, loc: float, scale: float, size: _Size) -> np.ndarray: ...
    def normal(self, loc: float, scale: float, size: _Size | None = None) -> float | np.ndarray:
        """A normal number (Box-Muller transform of two buffered uniforms), or an array."""
        if size is not None:
            return self.generator.normal(loc, scale, size)
        radius = math.sqrt(-2.0 * math.log(1.0 - self.random()))
        return loc + scale * radius * math.cos(2.0 * math.pi * self.random())

    def integers(self, low: int, high: int | None = None) -> int:
        """An integer in [low, high) (or [0, low) with one argument)."""
        if high is None:
            low, high = 0, low
        return low + min(int(self.random() * (high - low)), high - low - 1)

    def poisson(self, lam: float) -> int:
        """A Poisson count of mean ``lam`` (from the generator)."""
        return int(self.generator.poisson(lam))

    def standard_normal(self, size: _Size, dtype: Any = np.float64) -> np.ndarray:
        """An array of standard normal numbers (from the generator)."""
        values: np.ndarray = self.generator.standard_normal(size, dtype=dtype)
        return values


def weighted_index(rng: Draws, cdf: Sequence[float]) -> int:
    """Index drawn with probabilities given by a cumulative table (faster than rng.choice)."""
    return min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def random_sign(rng: Draws) -> float:
    """+1.0 or -1.0 with equal odds (one buffered draw)."""
    return 1.0 if rng.random() < 0.5 else -1.0


def smooth_noise(rng: Draws, size: int, cell: int) -> np.ndarray:
    """Zero-mean noise field with features about ``cell`` pixels wide (bicubic upsampling)."""
    n = size // cell + 3
    small = rng.standard_normal((n, n), dtype=np.float32)
    big = cv2.resize(small, (n * cell, n * cell), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[cell : cell + size, cell : cell + size])


def fine_noise(rng: Draws, size: int, sigma: float) -> np.ndarray:
    """Pixel noise of standard deviation about 1, blurred with a Gaussian of ``sigma`` px.

    Uniform white noise (std ``1/sqrt(12)``) is used because it is four times faster to draw
    than normal noise; after the blur its distribution is close to normal anyway.
    """
    white = rng.random((size, size), dtype=np.float32) - np.float32(0.5)
    blurred = cv2.GaussianBlur(white, (0, 0), sigma)
    return blurred * np.float32(math.sqrt(12.0) * 2.0 * math.sqrt(math.pi) * sigma)
