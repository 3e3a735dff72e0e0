"""Embedded synthetic aerial dataset (``dataset=synthetic``): procedural Potsdam-like tiles.

Data card
---------
**What it is.** A procedural generator of aerial-looking RGB tiles with pixel-exact labels in
the six classes of ISPRS Potsdam (same indices and label colours as :mod:`lossd.data.potsdam`),
so the whole pipeline (data, models, Lossd, metrics, W&B, tables) runs on a laptop with no
download. It is what the README's first command trains on.

**What a tile shows** (pixel scale fixed at roughly 0.3 m/px, so a bigger tile is a bigger
area, not bigger objects):

- low vegetation: textured grass background with dry patches and mottling;
- impervious surfaces: a street grid at a random orientation with wide roads (dashed centre
  line) and narrow ones, crossings and T-junctions, sidewalks, grass verges between road and
  sidewalk, parking lots with stall lines, paved plazas and paved yards around houses;
- buildings: rotated rectangles, L shapes, rows of terraced houses whose walls touch, perimeter
  blocks around a courtyard and small sheds, mostly aligned with the streets; gable, hip or
  flat roofs in red, brown, anthracite and grey, with two or four planes whose brightness
  depends on the sun, ridge lines, parapets and rooftop units;
- cast shadows of buildings, trees and cars along the sun direction of the tile; a shadow
  pixel keeps the label of the ground it falls on;
- trees: lumpy crowns with leafy texture, lit from the sun side, in street rows and garden
  clusters, overhanging roads and roofs (the tree label wins where a crown covers);
- cars: 11-15 × 5-7 px with windscreens, parked along kerbs, in parking lots and driving,
  never touching each other;
- clutter: bare soil, groups of containers and tarps, pools (on low vegetation only);
- sensor: global illumination, a brightness gradient, colour jitter, gamma, a Gaussian blur
  of 0.5-0.9 px and 1-2 % noise.

Pixel shares over 200 tiles of 256² (``bench/bench_synthetic.py``): impervious 26 %,
building 17 %, low vegetation 42 %, tree 13 %, car 1.6 %, clutter 0.8 %.

**Classes** (label colours from :mod:`lossd.data.potsdam`; 255 = ignore, never produced):

| index | class | label RGB |
|---|---|---|
| 0 | impervious surfaces | 255, 255, 255 |
| 1 | building | 0, 0, 255 |
| 2 | low vegetation | 0, 255, 255 |
| 3 | tree | 0, 255, 0 |
| 4 | car | 255, 255, 0 |
| 5 | clutter | 255, 0, 0 |

Evaluation follows the Potsdam protocol: mean metrics over classes 0-4, clutter excluded.

**Files** written by :func:`prepare_synthetic` (default 256 train, 64 validation, 32 test
tiles of 256×256 px; any tile size >= 64): ``<root>/{train,val,test}/images/<stem>.png`` (RGB
PNG) and ``<root>/{train,val,test}/masks/<stem>.png`` (single-channel uint8 class indices),
stems ``tile<NNNNN>_0_0`` (docs/design.md, ``<source-stem>_<row>_<col>``), and ``<root>/meta.json``
with the parameters and :data:`GENERATOR_VERSION`. Tiles are deterministic: tile ``i`` of a
split depends only on ``(seed, split, i)`` and the tile size, and the files are byte-identical
from run to run (with the same NumPy and OpenCV versions).

**What it is for.** Smoke tests, tutorials, quick ablations and checking that a loss or model
change learns at all, on CPU in minutes. Boundaries matter (thin roads and verges, 6 px wide
cars, touching houses, overhanging crowns, soft sensor blur), so a boundary-aware loss has
something to do.

**What it is not.** A benchmark: scores on it say nothing about Potsdam, LoveDA or UAVid, and
the shapes, textures and class frequencies are hand-made, not measured from real imagery. It
carries no licence restriction and needs no citation beyond this repository.
"""

from lossd.data.synthetic._info import INFO, plot_sample
from lossd.data.synthetic._tile import generate_tile
from lossd.data.synthetic.prepare import GENERATOR_VERSION, SPLITS, prepare_synthetic

__all__ = [
    "GENERATOR_VERSION",
    "INFO",
    "SPLITS",
    "generate_tile",
    "plot_sample",
    "prepare_synthetic",
]
