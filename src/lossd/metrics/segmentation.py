"""``SegmentationMetrics``: the evaluation protocol of docs/design.md in one accumulator.

Confusion-matrix scores (mIoU, mF1, OA, mPrecision, mRecall; GeoSeg tools/metric.py and
potsdam_test.py, see :mod:`lossd.metrics.confusion`), Boundary IoU (Cheng et al., CVPR 2021;
:mod:`lossd.metrics.boundary`), the Boundary F-score (Csurka et al., BMVC 2013;
:mod:`lossd.metrics.bfscore`) and, on request, over/under-segmentation histograms
(:mod:`lossd.metrics.diagnostics`). Every score comes from the summed counts through the one
formula of :data:`lossd.metrics.catalogue.METRICS`. All state is a handful of int64 count
tensors, so results over several updates, or several processes after
:meth:`SegmentationMetrics.sync`, equal one update over all the data exactly. With
``per_image=True`` the counts of every image are kept too (:class:`lossd.metrics.PerImageStats`),
for paired statistics over images.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossd.errors import CheckpointError, DataFormatError, InvalidOptionError
from lossd.metrics.bfscore import bf_counts, bf_tolerance
from lossd.metrics.boundary import band_counts, boundary_width, joint_counts
from lossd.metrics.catalogue import metrics_dict
from lossd.metrics.confusion import confusion_counts
from lossd.metrics.diagnostics import DIAGNOSTIC_BINS, error_diagnostics
from lossd.metrics.per_image import OPTIONAL_COUNT_FIELDS, PerImageStats

__all__ = ["SegmentationMetrics"]

_CONFIG_KEYS = (
    "num_classes",
    "ignore_index",
    "eval_classes",
    "boundary_ratio",
    "boundary_width",
    "bf_ratio",
    "diagnostics",
)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _as_labels(values: Tensor | np.ndarray, name: str, device: torch.device) -> Tensor:
    """Integer tensor [B, H, W] (dtype kept) from a tensor or array of shape [B, H, W] or [H, W]."""
    if isinstance(values, np.ndarray):
        if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
            raise DataFormatError(
                f"{name} must hold integer class indices, got a numpy array of dtype "
                f"{values.dtype}; pass e.g. logits.argmax(1) for pred"
            )
        if values.dtype not in (np.uint8, np.int8, np.int16, np.int32, np.int64):
            values = values.astype(np.int64)  # unsigned types torch cannot hold
        tensor = torch.from_numpy(np.ascontiguousarray(values)).to(device)
    elif isinstance(values, Tensor):
        if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
            raise DataFormatError(
                f"{name} must hold integer class indices, got a tensor of dtype {values.dtype}; "
                "pass e.g. logits.argmax(1) for pred"
            )
        tensor = values.detach().to(device)
        if tensor.dtype in (torch.uint16, torch.uint32, torch.uint64):
            tensor = tensor.to(torch.int64)  # few kernels support these
    else:
        raise DataFormatError(
            f"{name} must be a torch.Tensor or numpy.ndarray, got {type(values).__name__}"
        )
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise DataFormatError(
            f"{name} must have shape [B, H, W] or [H, W], got {tuple(values.shape)}"
        )
    return tensor


class SegmentationMetrics:
    """Accumulates confusion-matrix metrics, Boundary IoU and BF over an evaluation set.

    Protocol (docs/design.md, Conventions): pixels whose target is ``ignore_index`` drop out of
    everything; per-class IoU, F1, precision and recall come from one confusion matrix over the
    whole set; means are taken over ``eval_classes`` skipping NaN (GeoSeg potsdam_test.py uses
    ``np.nanmean(...[:-1])`` for Potsdam: clutter out); OA is trace / total over all valid pixels
    of all classes, including those outside ``eval_classes`` (GeoSeg potsdam_test.py). Boundary
    IoU: per image and class, inner bands of width ``d`` of the target and predicted class masks
    (official ``mask_to_boundary`` semantics, image border = contour; an ignore pixel is "not
    the class" in both masks, so what the prediction says there changes nothing), intersection
    and union summed per class over the set, BIoU_c = I / U, mBIoU = mean over
    ``eval_classes``. Boundary F-score (:mod:`lossd.metrics.bfscore`, MATLAB ``bfscore``):
    per image and class, the 4-neighbour boundaries of the target and predicted class masks
    (ignore pixels outside both, as for Boundary IoU), boundary pixels matched within
    ``bf_ratio`` times the image diagonal, the four counts summed per class over the set,
    BF_c = 2 P R / (P + R), mBF = mean over ``eval_classes``.

    Inputs may be torch tensors on any device (the state moves to the device of the latest
    tensor input and the work stays there) or numpy arrays (computed on the state's device).
    Under ``torch.distributed``, each rank must call :meth:`update` on disjoint data (e.g. a
    ``DistributedSampler`` without padding duplicates), then :meth:`sync` on every rank before
    :meth:`compute`.

    Args:
        num_classes: Number of classes C; predictions hold ``0..C-1``.
        ignore_index: Target value of pixels to ignore (255 in prepared masks, docs/design.md),
            or None if every target pixel counts. Must not be a class index.
        eval_classes: Classes the means run over (default all), e.g. ``(0, 1, 2, 3, 4)`` for
            Potsdam (docs/datasets.md, section 5).
        boundary_ratio: Band width as a fraction of the image diagonal; 0.02 is the Boundary IoU
            paper's default (Cheng et al., CVPR 2021; docs/reference.md, "Boundary IoU").
        boundary_width: Fixed band width in pixels, overriding ``boundary_ratio``.
        bf_ratio: Boundary F-score match tolerance as a fraction of the image diagonal; 0.0075
            is MATLAB ``bfscore``'s default, "the value used by the paper" (Csurka et al.).
        diagnostics: Also accumulate the false-positive distance and false-negative depth
            histograms (:mod:`lossd.metrics.diagnostics`).
        per_image: Also keep every image's counts (:meth:`per_image_stats`); :meth:`update`
            then needs the image names.

    Raises:
        InvalidOptionError: If an argument is out of range.

    Example:
        >>> metrics = SegmentationMetrics(num_classes=6, eval_classes=range(5))
        >>> metrics.update(logits.argmax(1), target)  # doctest: +SKIP
        >>> metrics.compute()["mIoU"]  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        eval_classes: Sequence[int] | None = None,
        boundary_ratio: float = 0.02,
        boundary_width: int | None = None,
        diagnostics: bool = False,
        per_image: bool = False,
        bf_ratio: float = 0.0075,
    ) -> None:
        if not _is_int(num_classes) or num_classes < 1:
            raise InvalidOptionError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = int(num_classes)
        if ignore_index is not None:
            if not _is_int(ignore_index):
                raise InvalidOptionError(
                    f"ignore_index must be an int or None, got {ignore_index!r}"
                )
            if 0 <= ignore_index < num_classes:
                raise InvalidOptionError(
                    f"ignore_index={ignore_index} is a class index (num_classes={num_classes}); "
                    f"expected a value outside 0..{num_classes - 1}, e.g. 255"
                )
            ignore_index = int(ignore_index)
        self.ignore_index = ignore_index
        self.eval_classes = self._check_eval_classes(eval_classes)
        if (
            not isinstance(boundary_ratio, int | float)
            or isinstance(boundary_ratio, bool)
            or not math.isfinite(boundary_ratio)
            or boundary_ratio <= 0
        ):
            raise InvalidOptionError(
                f"boundary_ratio must be a positive number, got {boundary_ratio!r} "
                "(0.02 = Boundary IoU default)"
            )
        self.boundary_ratio = float(boundary_ratio)
        if boundary_width is not None and (not _is_int(boundary_width) or boundary_width < 1):
            raise InvalidOptionError(
                f"boundary_width must be a positive int or None, got {boundary_width!r}"
            )
        self.boundary_width = None if boundary_width is None else int(boundary_width)
        if (
            not isinstance(bf_ratio, int | float)
            or isinstance(bf_ratio, bool)
            or not math.isfinite(bf_ratio)
            or bf_ratio <= 0
        ):
            raise InvalidOptionError(
                f"bf_ratio must be a positive number, got {bf_ratio!r} "
                "(0.0075 = MATLAB bfscore default)"
            )
        self.bf_ratio = float(bf_ratio)
        if not isinstance(diagnostics, bool):
            raise InvalidOptionError(f"diagnostics must be a bool, got {diagnostics!r}")
        self.diagnostics = diagnostics
        if not isinstance(per_image, bool):
            raise InvalidOptionError(f"per_image must be a bool, got {per_image!r}")
        self.per_image = per_image
        self._device = torch.device("cpu")
        self._state = self._zero_state()
        self._synced: dict[str, Tensor] | None = None
        self._rows: list[PerImageStats] = []
        self._synced_rows: PerImageStats | None = None

    def _check_eval_classes(self, eval_classes: Sequence[int] | None) -> list[int]:
        if eval_classes is None:
            return list(range(self.num_classes))
        classes = list(eval_classes)
        bad = [c for c in classes if not _is_int(c) or not 0 <= c < self.num_classes]
        if not classes or bad or len(set(classes)) != len(classes):
            raise InvalidOptionError(
                f"eval_classes must be distinct class indices in 0..{self.num_classes - 1}, "
                f"got {eval_classes!r}"
            )
        return [int(c) for c in classes]

    def _zero_state(self) -> dict[str, Tensor]:
        c, zeros = self.num_classes, self._zeros
        state = {"joint": zeros(4, c + 1, c + 1), "bf": zeros(4, c)}
        if self.diagnostics:
            state["error_hist"] = zeros(2, c, len(DIAGNOSTIC_BINS))
        return state

    def _zeros(self, *shape: int) -> Tensor:
        return torch.zeros(shape, dtype=torch.int64, device=self._device)

    def reset(self) -> None:
        """Clear all accumulated counts."""
        self._state = self._zero_state()
        self._synced = None
        self._rows = []
        self._synced_rows = None

    def _move_to(self, device: torch.device) -> None:
        if device != self._device:
            self._device = device
            self._state = {k: v.to(device) for k, v in self._state.items()}

    def _band_width(self, height: int, width: int) -> int:
        if self.boundary_width is not None:
            return self.boundary_width
        return boundary_width(height, width, self.boundary_ratio)

    @torch.no_grad()
    def update(
        self,
        pred: Tensor | np.ndarray,
        target: Tensor | np.ndarray,
        names: Sequence[str] | None = None,
    ) -> None:
        """Add a batch of predictions and targets.

        Args:
            pred: Predicted class indices in ``0..num_classes-1`` (integer dtype).
            target: Target class indices, or ``ignore_index`` for pixels to skip.
            names: One name per image (required with ``per_image``; e.g. ``batch["name"]``).

        Raises:
            DataFormatError: If the shapes differ or are not [B, H, W] / [H, W], the dtype is not
                integer, ``pred`` holds a value outside ``0..num_classes-1``, or ``target`` one
                that is neither a class index nor ``ignore_index``, or with ``per_image`` the
                names are missing or not one per image. Nothing is counted then.

        Shape:
            - pred, target: [B, H, W] or [H, W] (one image); all images of a batch share H, W.
        """
        if isinstance(pred, Tensor):
            self._move_to(pred.device)
        elif isinstance(target, Tensor):
            self._move_to(target.device)
        pred_t = _as_labels(pred, "pred", self._device)
        target_t = _as_labels(target, "target", self._device)
        if pred_t.shape != target_t.shape:
            raise DataFormatError(
                f"pred and target shapes differ: pred {tuple(pred.shape)}, "
                f"target {tuple(target.shape)}; expected equal [B, H, W] or [H, W]"
            )
        if self.per_image and (
            names is None or isinstance(names, str) or len(names) != pred_t.shape[0]
        ):
            raise DataFormatError(
                f"per_image metrics need one name per image: got {names!r} for "
                f"{pred_t.shape[0]} image(s)"
            )
        if pred_t.numel() == 0:
            return
        pred_t, target_t = self._encode(pred_t, target_t)
        c = self.num_classes
        width = self._band_width(pred_t.shape[-2], pred_t.shape[-1])
        counted = joint_counts(pred_t, target_t, c, width, per_image=self.per_image)
        joint = counted.sum(dim=0) if self.per_image else counted
        if bool(joint[:, c, :c].any()):  # valid pixels (prediction < C) whose target is C
            raise DataFormatError(
                f"target holds value {c}, expected class indices 0..{c - 1} or "
                f"ignore_index={self.ignore_index}"
            )
        self._synced = None
        self._synced_rows = None
        self._state["joint"] += joint
        tolerance = bf_tolerance(pred_t.shape[-2], pred_t.shape[-1], self.bf_ratio)
        boundary_f = bf_counts(pred_t, target_t, c, tolerance, per_image=self.per_image)
        self._state["bf"] += boundary_f.sum(dim=0) if self.per_image else boundary_f
        histograms = profile = None
        if self.diagnostics:
            # the signed profile is kept per image only: not computed otherwise
            histograms, profile = error_diagnostics(pred_t, target_t, c, profile=self.per_image)
            self._state["error_hist"] += histograms.sum(dim=0)
        if self.per_image:
            assert names is not None
            self._rows.append(
                PerImageStats.from_batch(list(names), counted, histograms, profile, boundary_f)
            )

    def _encode(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Check the values; return compact labels with ``num_classes`` marking ignore pixels.

        The value ``C = num_classes`` is not a class, so it stands for "ignore" in both maps
        (where the target is ignore, the prediction is overwritten with ``C``). Labels become
        uint8 when ``C <= 255``, which makes the neighbour comparisons and counting cheap.
        """
        c = self.num_classes
        low, high = (int(v) for v in torch.aminmax(pred))
        if low < 0 or high >= c:
            raise DataFormatError(
                f"pred holds class index {low if low < 0 else high}, expected values in "
                f"0..{c - 1} (num_classes={c})"
            )
        if c > torch.iinfo(target.dtype).max:
            target = target.to(torch.int64)
        valid = None if self.ignore_index is None else target != self.ignore_index
        if valid is not None:
            target = torch.where(valid, target, c)
        low, high = (int(v) for v in torch.aminmax(target))
        if low < 0 or high > c:
            raise DataFormatError(
                f"target holds value {low if low < 0 else high}, expected class indices "
                f"0..{c - 1} or ignore_index={self.ignore_index}"
            )
        label_dtype = torch.uint8 if c <= torch.iinfo(torch.uint8).max else torch.int32
        target = target.to(label_dtype)
        pred = pred.to(label_dtype)
        if valid is not None:
            pred = torch.where(valid, pred, c)
        return pred, target

    def sync(self) -> None:
        """Sum the counts of all processes (no-op unless ``torch.distributed`` is initialised).

        Each rank must have called :meth:`update` on its own, disjoint share of the data; after
        ``sync()`` every rank's :meth:`compute` equals a single process's over all of it. The
        local counts are kept: calling ``sync()`` again reduces them again (no double counting),
        and a later :meth:`update` discards the synced totals until the next ``sync()``. It is a
        collective call: every rank must call it.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            self._synced = None
            self._synced_rows = None
            return
        if self.per_image:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self._local_rows())
            self._synced_rows = PerImageStats.concat([g for g in gathered if g is not None])
        names = list(self._state)
        flat = torch.cat([self._state[k].reshape(-1) for k in names])
        if dist.get_backend() == "nccl" and flat.device.type != "cuda":
            flat = flat.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat = flat.to(self._device)
        synced, offset = {}, 0
        for k in names:
            n = self._state[k].numel()
            synced[k] = flat[offset : offset + n].reshape(self._state[k].shape)
            offset += n
        self._synced = synced

    def _local_rows(self) -> PerImageStats | None:
        return PerImageStats.concat(self._rows) if self._rows else None

    def per_image_stats(self) -> PerImageStats | None:
        """Every image's counts, ordered by name (all ranks' after :meth:`sync`).

        Their sums equal the totals :meth:`compute` scores (tested). None if no image was
        added.

        Raises:
            InvalidOptionError: If the metrics were built without ``per_image``.
            DataFormatError: If an image name was added twice.
        """
        if not self.per_image:
            raise InvalidOptionError("per_image_stats() needs SegmentationMetrics(per_image=True)")
        rows = self._synced_rows if self._synced_rows is not None else self._local_rows()
        return None if rows is None else rows.sorted_by_name()

    def _counts(self) -> dict[str, Tensor]:
        return self._state if self._synced is None else self._synced

    @property
    def confusion_matrix(self) -> Tensor:
        """C x C int64 confusion matrix, rows = target, columns = pred (synced if synced)."""
        c = self.num_classes
        return self._counts()["joint"].sum(dim=0)[:c, :c].clone()

    def compute(self) -> dict[str, Any]:
        """Scores over everything accumulated (over all ranks after :meth:`sync`).

        Every metric of :data:`lossd.metrics.catalogue.METRICS`, from the summed counts.

        Returns:
            Per-class lists ``IoU``, ``F1``, ``BIoU``, ``BF``, ``Precision``, ``Recall`` of
            length ``num_classes`` (NaN for a class with no support in target nor prediction;
            BIoU NaN where the union of bands is empty; BF NaN where neither map has a boundary
            of the class); ``mIoU``, ``mF1``, ``OA``, ``mBIoU``, ``mBF``, ``mPrecision``,
            ``mRecall``: floats in 0..1 (NaN if undefined); ``eval_classes``; and with
            ``diagnostics=True`` also ``fp_distance_hist`` and ``fn_depth_hist`` (lists [C][6]
            of pixel counts) and ``diagnostic_bins`` (the bin labels).
        """
        c = self.num_classes
        state = {k: v.detach().cpu() for k, v in self._counts().items()}
        counts = confusion_counts(state["joint"].sum(0)[:c, :c])
        inter, target_band, pred_band = (v.numpy() for v in band_counts(state["joint"]))
        counts["band_intersection"] = inter
        counts["band_union"] = target_band + pred_band - inter
        for index, name in enumerate(OPTIONAL_COUNT_FIELDS):
            counts[name] = state["bf"][index].numpy()
        result = metrics_dict(counts, self.eval_classes)
        result["eval_classes"] = list(self.eval_classes)
        if self.diagnostics:
            fp_hist, fn_hist = state["error_hist"]
            result["fp_distance_hist"] = fp_hist.tolist()
            result["fn_depth_hist"] = fn_hist.tolist()
            result["diagnostic_bins"] = list(DIAGNOSTIC_BINS)
        return result

    def state_dict(self) -> dict[str, Any]:
        """The settings and this process's local counts (CPU tensors), for ``torch.save``.

        Local counts, not synced totals: loading them on every rank and syncing again gives the
        same totals as before. Per-image rows are not included (:meth:`per_image_stats`).
        """
        state: dict[str, Any] = {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "eval_classes": list(self.eval_classes),
            "boundary_ratio": self.boundary_ratio,
            "boundary_width": self.boundary_width,
            "bf_ratio": self.bf_ratio,
            "diagnostics": self.diagnostics,
        }
        state.update({k: v.detach().cpu().clone() for k, v in self._state.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore counts saved by :meth:`state_dict` from metrics with the same settings.

        Args:
            state: A mapping returned by :meth:`state_dict`.

        Raises:
            CheckpointError: If a key is missing, a setting differs, or a count has the wrong
                shape.
        """
        mine = self.state_dict()
        missing = sorted(set(mine) - set(state))
        if missing:
            raise CheckpointError(f"metrics state is missing keys {missing}")
        for key in _CONFIG_KEYS:
            if state[key] != mine[key]:
                raise CheckpointError(
                    f"metrics state was saved with {key}={state[key]!r}, these metrics have "
                    f"{key}={mine[key]!r}; build SegmentationMetrics with the saved settings"
                )
        loaded = {}
        for key, current in self._state.items():
            value = torch.as_tensor(state[key])
            if value.shape != current.shape:
                raise CheckpointError(
                    f"metrics state {key!r} has shape {tuple(value.shape)}, "
                    f"expected {tuple(current.shape)}"
                )
            loaded[key] = value.to(device=self._device, dtype=torch.int64)
        self._state = loaded
        self._synced = None
