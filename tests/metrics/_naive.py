"""Independent numpy references for the metrics tests: per-class loops, no vectorisation tricks.

The boundary band is my own port of the semantics of the official ``mask_to_boundary``
(boundary-iou-api, boundary_iou/utils/boundary_utils.py): pad by one zero pixel, erode with a
3x3 square ``d`` times with OpenCV, crop, subtract.
"""

import math

import cv2
import numpy as np
from scipy import ndimage

BIN_LOWER_EDGES = (1, 2, 4, 8, 16, 32)


def band_width(height, width, ratio):
    return max(1, int(round(ratio * np.sqrt(height**2 + width**2))))  # noqa: RUF046 (official form)


def boundary_cv2(mask, d):
    """Inner band of a binary mask: padded iterative erosion with cv2 (official semantics)."""
    mask = mask.astype(np.uint8)
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1 : h + 1, 1 : w + 1]
    return (mask - eroded).astype(bool)


def boundary_scipy(mask, d):
    """Same band with scipy: outside the image is 0, eroded ``d`` times by a 3x3 square."""
    mask = mask.astype(bool)
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), iterations=d, border_value=0)
    return mask & ~eroded


def _ratio(num, den, support):
    if support == 0:
        return math.nan
    return num / den if den > 0 else 0.0


def per_class_scores(preds, targets, num_classes, ignore_index):
    """IoU/F1/precision/recall per class and OA, counting pixels class by class."""
    tp = np.zeros(num_classes, np.int64)
    fp = np.zeros(num_classes, np.int64)
    fn = np.zeros(num_classes, np.int64)
    correct = total = 0
    for pred, target in zip(preds, targets, strict=True):
        valid = target != ignore_index
        correct += int(np.sum((pred == target) & valid))
        total += int(np.sum(valid))
        for c in range(num_classes):
            tp[c] += np.sum((pred == c) & (target == c) & valid)
            fp[c] += np.sum((pred == c) & (target != c) & valid)
            fn[c] += np.sum((pred != c) & (target == c) & valid)
    out = {"IoU": [], "F1": [], "Precision": [], "Recall": []}
    for c in range(num_classes):
        support = tp[c] + fp[c] + fn[c]
        out["IoU"].append(_ratio(tp[c], tp[c] + fp[c] + fn[c], support))
        out["F1"].append(_ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c], support))
        out["Precision"].append(_ratio(tp[c], tp[c] + fp[c], support))
        out["Recall"].append(_ratio(tp[c], tp[c] + fn[c], support))
    out["OA"] = correct / total if total else math.nan
    return out


def boundary_iou(preds, targets, num_classes, ignore_index, ratio=0.02, width=None):
    """Per-class Boundary IoU accumulated over images (bands per image and class).

    Ignore pixels are "not the class" in the target and the prediction masks alike.
    """
    inter = np.zeros(num_classes, np.int64)
    union = np.zeros(num_classes, np.int64)
    for pred, target in zip(preds, targets, strict=True):
        h, w = target.shape
        d = width if width is not None else band_width(h, w, ratio)
        valid = target != ignore_index
        for c in range(num_classes):
            gt_band = boundary_cv2(target == c, d) & valid
            pred_band = boundary_cv2((pred == c) & valid, d)
            inter[c] += np.sum(gt_band & pred_band)
            union[c] += np.sum(gt_band | pred_band)
    return [inter[c] / union[c] if union[c] else math.nan for c in range(num_classes)]


def nanmean(values, classes):
    kept = [values[c] for c in classes if not math.isnan(values[c])]
    return sum(kept) / len(kept) if kept else math.nan


def _bin(distance):
    return max(i for i, edge in enumerate(BIN_LOWER_EDGES) if distance >= edge)


def error_histograms(preds, targets, num_classes, ignore_index):
    """Brute force: for every wrong pixel, scan all pixels for the nearest one of the region."""
    fp_hist = np.zeros((num_classes, 6), np.int64)
    fn_hist = np.zeros((num_classes, 6), np.int64)
    for pred, target in zip(preds, targets, strict=True):
        h, w = target.shape
        ys, xs = np.mgrid[0:h, 0:w]
        for y in range(h):
            for x in range(w):
                t, p = target[y, x], pred[y, x]
                if t in (ignore_index, p):
                    continue
                taxicab = np.abs(ys - y) + np.abs(xs - x)
                inside_p = target == p
                reach = taxicab[inside_p].min() if inside_p.any() else math.inf
                outside_t = target != t
                depth = taxicab[outside_t].min() if outside_t.any() else math.inf
                fp_hist[p, _bin(reach)] += 1
                fn_hist[t, _bin(depth)] += 1
    return fp_hist, fn_hist


def taxicab_to_features(features):
    """L1 distance to the nearest True pixel, by scanning every feature pixel (inf if none)."""
    h, w = features.shape
    out = np.full((h, w), np.inf)
    for fy, fx in zip(*np.nonzero(features), strict=True):
        ys, xs = np.mgrid[0:h, 0:w]
        out = np.minimum(out, np.abs(ys - fy) + np.abs(xs - fx))
    return out


def four_neighbour_boundary(mask):
    """Pixels of ``mask`` with a 4-neighbour outside it or outside the image, pixel by pixel.

    MATLAB ``bwbfscore2``: the mask padded with zeros, eroded by the 3x3 cross, subtracted.
    """
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ny, nx = y + dy, x + dx
                if not (0 <= ny < h and 0 <= nx < w) or not mask[ny, nx]:
                    out[y, x] = True
                    break
    return out


def bf_counts(preds, targets, num_classes, ignore_index, ratio=0.0075, tolerance=None):
    """Per-class BF counts summed over images: a loop over classes and pixels with scipy's EDT.

    Returns ``[4, C]``: predicted boundary pixels, those within ``theta`` (Euclidean distance
    strictly below, MATLAB's ``D < theta^2``) of a true boundary pixel of the class, true
    boundary pixels, those within ``theta`` of a predicted one. Ignore pixels are not the class
    in either mask (MATLAB ``evaluateSemanticSegmentation``: unlabeled pixels masked out of the
    predicted masks).
    """
    counts = np.zeros((4, num_classes), np.int64)
    for pred, target in zip(preds, targets, strict=True):
        h, w = target.shape
        theta = tolerance if tolerance is not None else ratio * math.sqrt(h * h + w * w)
        valid = target != ignore_index
        for c in range(num_classes):
            true_edge = four_neighbour_boundary((target == c) & valid)
            pred_edge = four_neighbour_boundary((pred == c) & valid)
            to_true = (
                ndimage.distance_transform_edt(~true_edge)
                if true_edge.any()
                else np.full((h, w), np.inf)
            )
            to_pred = (
                ndimage.distance_transform_edt(~pred_edge)
                if pred_edge.any()
                else np.full((h, w), np.inf)
            )
            for y in range(h):
                for x in range(w):
                    if pred_edge[y, x]:
                        counts[0, c] += 1
                        counts[1, c] += int(to_true[y, x] < theta)
                    if true_edge[y, x]:
                        counts[2, c] += 1
                        counts[3, c] += int(to_pred[y, x] < theta)
    return counts


def bf_scores(counts):
    """Per-class BF from ``[4, C]`` counts: 2PR/(P+R); NaN without boundary pixels in either map,
    P (R) = 0 where the predicted (true) boundary is empty, 0 where P + R = 0."""
    out = []
    for pred, pred_hit, true, true_hit in counts.T.tolist():
        if pred + true == 0:
            out.append(math.nan)
            continue
        p = pred_hit / pred if pred else 0.0
        r = true_hit / true if true else 0.0
        out.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    return out
