"""The camera: illumination, brightness gradient, colour jitter, gamma, blur and noise.

Blur of 0.5-0.9 px and noise of 0.8-2 % of full scale, chosen by eye; not measured.
"""

import math

import cv2
import numpy as np

from lossd.data.synthetic._geometry import unit_vector
from lossd.data.synthetic._scene import Scene

__all__ = ["apply_sensor"]


def apply_sensor(scene: Scene) -> np.ndarray:
    """Illumination, brightness gradient, colour jitter, gamma, blur and noise -> uint8 RGB."""
    rng, size = scene.rng, scene.size
    gain = np.float32(rng.uniform(0.8, 1.2))
    channels = (1.0 + rng.normal(0.0, 0.04, (3, 1, 1))).astype(np.float32)
    haze = np.float32(rng.uniform(0.0, 0.05))
    direction = unit_vector(float(rng.uniform(0.0, 2.0 * math.pi)))
    slope = np.float32(rng.uniform(0.0, 0.12) / size)
    gradient = 1.0 + slope * (scene.coord_u * direction[0] + scene.coord_v * direction[1])
    planes = scene.image * (gain * gradient) * channels + haze
    image = cv2.merge(list(np.clip(planes, 0.0, 1.0)))  # planar 3×H×W -> H×W×3
    image = cv2.pow(image, float(rng.uniform(0.85, 1.15)))
    image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 0.9)))
    # Sensor noise: uniform, standard deviation 0.8-2 % of full scale.
    noise = rng.random(image.shape, dtype=np.float32) - np.float32(0.5)
    image += noise * np.float32(math.sqrt(12.0) * rng.uniform(0.008, 0.02))
    out: np.ndarray = cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    return out
