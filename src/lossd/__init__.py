"""lossd: boundary-aware semantic segmentation of aerial images with the distance loss Lossd.

Reference: Ma, Ren, Li, Chen, "Improving remote sensing image semantic segmentation based on
distance loss", Acta Aeronautica et Astronautica Sinica 47(8):332780 (2026),
DOI 10.7527/S1000-6893.2025.32780.

Importing ``lossd`` (or ``lossd.losses``) loads torch and numpy only; the training stack is
the ``lossd[train]`` extra (docs/api.md, "Install").
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("lossd")  # the one source: pyproject.toml's `version`
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"
