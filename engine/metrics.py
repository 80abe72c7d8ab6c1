"""Segmentation metrics: DAVIS J&F for videos, cIoU and gIoU for images. NumPy and OpenCV only.

Written from the definitions (DAVIS 2016/2017 benchmark papers; the FlowSeg design note for
cIoU/gIoU), not from any toolkit's code:

- J (region similarity): |P ∩ G| / |P ∪ G|, and 1 when the union is empty (both masks empty).
- F (contour accuracy): the F-measure of boundary precision and recall. Each mask's boundary is
  its one-pixel boundary map: a pixel is on it when the mask differs between that pixel and its
  right, lower or lower-right neighbour (a neighbour beyond the image counts as equal, so the
  image edge is never a contour). A boundary pixel of one mask matches when a boundary pixel of
  the other lies within a disk of radius `tolerance` pixels, where tolerance is
  ceil(bound_th * image diagonal) for bound_th < 1 and bound_th itself otherwise (DAVIS:
  bound_th = 0.008, so 8 px at 854x480). Empty boundaries: both empty -> F = 1; only the
  prediction's empty -> precision 1, recall 0; only the ground truth's -> precision 0, recall 1
  (F = 0 either way).
- Per video (expression): mean J and mean F over its frames (all frames, as the referring-VOS
  benchmarks do); J&F = (J + F) / 2. Over a set: the mean of the per-expression means.
- cIoU = sum of intersections / sum of unions over a set; gIoU = mean of per-sample IoU, 1 when
  a sample's union is empty. Pixels of an optional ignore mask count in neither.

Results are keyed by expression id, never by text: two expressions with the same words are
two separate samples.
"""
from __future__ import annotations

import math
from typing import Hashable, Mapping, Optional

import cv2
import numpy as np

BOUND_TH = 0.008


# -- per frame -------------------------------------------------------------------------------

def _as_masks(pred, gt, ndim: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != ndim:
        dims = "[H,W]" if ndim == 2 else "[T,H,W]"
        raise ValueError(f"{what}: prediction and ground truth must both be {dims} masks of the same "
                         f"shape; got {list(pred.shape)} and {list(gt.shape)}")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """J of one frame: IoU of two bool [H,W] masks, 1.0 when both are empty."""
    pred, gt = _as_masks(pred, gt, 2, "jaccard")
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """The one-pixel boundary of a bool [H,W] mask (see the module docstring)."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"boundary_map takes one [H,W] mask, got shape {list(m.shape)}")
    b = np.zeros_like(m)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]      # right neighbour
    b[:-1, :] |= m[:-1, :] != m[1:, :]      # lower neighbour
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]  # lower-right neighbour
    return b


def boundary_tolerance(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Matching distance in pixels: ceil(bound_th * diagonal) if bound_th < 1, else bound_th."""
    if bound_th < 0:
        raise ValueError(f"bound_th must be >= 0, got {bound_th}")
    if bound_th >= 1:
        return int(math.ceil(bound_th))
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _disk(radius: int) -> np.ndarray:
    """Structuring element: every offset (dy, dx) with dy^2 + dx^2 <= radius^2."""
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return (y * y + x * x <= radius * radius).astype(np.uint8)


def _dilate(b: np.ndarray, radius: int) -> np.ndarray:
    if radius == 0:
        return b
    return cv2.dilate(b.view(np.uint8), _disk(radius)).view(bool)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of one frame: boundary F-measure of two bool [H,W] masks (DAVIS conventions)."""
    pred, gt = _as_masks(pred, gt, 2, "f_measure")
    radius = boundary_tolerance(gt.shape, bound_th)
    pb, gb = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # precision or recall is 0, so the F-measure is too
    precision = np.count_nonzero(pb & _dilate(gb, radius)) / n_pred
    recall = np.count_nonzero(gb & _dilate(pb, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


# -- per video and over a set ----------------------------------------------------------------

def jf_video(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> dict:
    """J, F and J&F of one video: bool [T,H,W] prediction and ground truth, means over frames.
    Also returns the per-frame lists under "J_frames" and "F_frames"."""
    pred, gt = _as_masks(pred, gt, 3, "jf_video")
    if len(gt) == 0:
        raise ValueError("jf_video: the video has no frames to score")
    js = [jaccard(p, g) for p, g in zip(pred, gt)]
    fs = [f_measure(p, g, bound_th) for p, g in zip(pred, gt)]
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"J": j, "F": f, "J&F": (j + f) / 2, "frames": len(gt),
            "J_frames": [float(v) for v in js], "F_frames": [float(v) for v in fs]}


def _check_keys(preds: Mapping, gts: Mapping) -> None:
    missing, extra = [k for k in gts if k not in preds], [k for k in preds if k not in gts]
    if missing or extra:
        raise ValueError("predictions and ground truths must cover the same expression ids; "
                         f"no prediction for {missing[:10]}, no ground truth for {extra[:10]}")


def jf_per_expression(preds: Mapping[Hashable, np.ndarray], gts: Mapping[Hashable, np.ndarray],
                      bound_th: float = BOUND_TH) -> dict:
    """DAVIS J&F per expression and overall.

    preds, gts: {expression_id: bool [T,H,W]} with the same ids. Returns
    {"per_expression": {id: {"J", "F", "J&F", "frames", "J_frames", "F_frames"}},
     "overall": {"J", "F", "J&F", "count"}}; overall J and F are means over expressions
    (each video weighs the same, however long), and overall J&F is (J + F) / 2.
    """
    _check_keys(preds, gts)
    per = {k: jf_video(preds[k], gts[k], bound_th) for k in gts}
    if not per:
        return {"per_expression": {}, "overall": {"J": None, "F": None, "J&F": None, "count": 0}}
    j = float(np.mean([r["J"] for r in per.values()]))
    f = float(np.mean([r["F"] for r in per.values()]))
    return {"per_expression": per, "overall": {"J": j, "F": f, "J&F": (j + f) / 2, "count": len(per)}}


def intersection_union(pred: np.ndarray, gt: np.ndarray,
                       ignore: Optional[np.ndarray] = None) -> tuple[int, int]:
    """Pixel counts (|P ∩ G|, |P ∪ G|) of same-shape masks, leaving out pixels where `ignore`
    is True. Any number of dimensions ([H,W] for an image; [T,H,W] sums over frames)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction and ground truth shapes differ: {list(pred.shape)} vs "
                         f"{list(gt.shape)}")
    inter, union = pred & gt, pred | gt
    if ignore is not None:
        ignore = np.asarray(ignore, bool)
        if ignore.shape != gt.shape:
            raise ValueError(f"the ignore mask is {list(ignore.shape)} but the masks are "
                             f"{list(gt.shape)}; give one ignore mask of the sample's shape")
        keep = ~ignore
        inter, union = inter & keep, union & keep
    return int(np.count_nonzero(inter)), int(np.count_nonzero(union))


def iou_per_expression(preds: Mapping[Hashable, np.ndarray], gts: Mapping[Hashable, np.ndarray],
                       ignores: Optional[Mapping[Hashable, np.ndarray]] = None) -> dict:
    """cIoU and gIoU over a set of samples (images), with per-sample IoU.

    preds, gts: {expression_id: bool mask}; ignores: optional {expression_id: bool mask}, True
    where pixels are excluded (ids missing from it have none). Returns
    {"per_expression": {id: {"I", "U", "IoU"}}, "overall": {"cIoU", "gIoU", "count"}}.
    """
    _check_keys(preds, gts)
    ignores = ignores or {}
    extra = [k for k in ignores if k not in gts]
    if extra:
        raise ValueError(f"ignore masks given for unknown expression ids {extra[:10]}")
    per = {}
    for k in gts:
        inter, union = intersection_union(preds[k], gts[k], ignores.get(k))
        per[k] = {"I": inter, "U": union, "IoU": 1.0 if union == 0 else inter / union}
    if not per:
        return {"per_expression": {}, "overall": {"cIoU": None, "gIoU": None, "count": 0}}
    total_i = sum(r["I"] for r in per.values())
    total_u = sum(r["U"] for r in per.values())
    return {"per_expression": per,
            "overall": {"cIoU": 1.0 if total_u == 0 else total_i / total_u,
                        "gIoU": float(np.mean([r["IoU"] for r in per.values()])), "count": len(per)}}


def _keyed(masks):
    """A {id: mask} mapping as is; a sequence keyed by position."""
    if masks is None or isinstance(masks, Mapping):
        return masks
    return dict(enumerate(masks))


def ciou(preds, gts, ignores=None) -> float:
    """Cumulative IoU ΣI / ΣU of masks given as sequences or {id: mask} mappings
    (optionally with ignore masks)."""
    return iou_per_expression(_keyed(preds), _keyed(gts), _keyed(ignores))["overall"]["cIoU"]


def giou(preds, gts, ignores=None) -> float:
    """Mean per-sample IoU (empty union -> 1) of masks given as sequences or mappings."""
    return iou_per_expression(_keyed(preds), _keyed(gts), _keyed(ignores))["overall"]["gIoU"]


def shuffled_order(groups: list, seed: int = 0) -> np.ndarray:
    """The shuffled-expression control: a permutation that gives every sample the expression
    of a sample from another group (image or clip), wherever the set allows it."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    for i in range(len(order)):
        if groups[order[i]] == groups[i]:
            for j in range(len(order)):
                if groups[order[j]] != groups[i] and groups[order[i]] != groups[j]:
                    order[i], order[j] = order[j], order[i]
                    break
    return order
