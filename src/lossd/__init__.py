"""lossd: boundary-aware semantic segmentation of aerial images with the distance loss Lossd.

Reference: Ma, Ren, Li, Chen, "Improving remote sensing image semantic segmentation based on
distance loss", Acta Aeronautica et Astronautica Sinica 47(8):332780 (2026),
DOI 10.7527/S1000-6893.2025.32780.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
