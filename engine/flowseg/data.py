"""RefCOCO-format data for FlowSeg training and evaluation (what the studio exports).

    folder/instances.json         COCO: images, annotations (RLE or polygons), categories
    folder/refs(unc).p|refs.json  refs: {ref_id, ann_id, image_id, split, sentences: [{sent}]}
    folder/images/<file_name>     (or the folder itself, or --images DIR)
A .zip of such a folder (the page's export download) works too.

Two kinds of sample come out of it:
- referring: one sentence -> the mask of its ref's annotation;
- generic:   one category name -> every annotation of that category in the image (the
             segmentor-pretraining and multi-task samples; several targets per prompt).
Images are decoded on demand and kept in a small cache; masks come from pycocotools.
"""
from __future__ import annotations

import functools
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

REF_FILES = ("refs(unc).p", "refs(umd).p", "refs(google).p", "refs.json")


@dataclass(frozen=True)
class Sample:
    image_id: int
    text: str
    ann_ids: tuple           # the target annotations (one for a referring sentence)
    kind: str                # "referring" or "generic"
    key: str                 # stable id: "<ref_id>/<sent_id>" or "generic/<image>/<category>"


def unpacked(root: Path) -> Path:
    """A .zip (the page's export download) is unpacked into a temporary folder; the folder
    holding instances.json inside it is the dataset."""
    if root.suffix.lower() != ".zip" or not root.is_file():
        return root
    import tempfile
    import zipfile
    target = Path(tempfile.mkdtemp(prefix="flowseg-data-"))
    with zipfile.ZipFile(root) as z:
        z.extractall(target)
    found = sorted(target.rglob("instances.json"), key=lambda p: len(p.parts))
    return found[0].parent if found else target


class RefCocoData:
    def __init__(self, root, split: Optional[str] = "train", images: Optional[str] = None,
                 cache_images: int = 4096):
        self.root = unpacked(Path(root).expanduser())
        instances = self.root / "instances.json"
        if not instances.is_file():
            raise FileNotFoundError(f"{instances} not found: --data must be a RefCOCO-format "
                                    "folder (instances.json, refs(unc).p or refs.json, images/), "
                                    "e.g. from `python -m engine.demo_world image` or the "
                                    "studio's RefCOCO export")
        coco = json.loads(instances.read_text())
        self.images = {im["id"]: im for im in coco["images"]}
        self.annotations = {a["id"]: a for a in coco["annotations"]}
        self.categories = {c["id"]: c["name"] for c in coco.get("categories", [])}
        self.image_dir = self._image_dir(images)
        refs = self._read_refs()
        if split is not None:
            splits = sorted({r.get("split") for r in refs})
            refs = [r for r in refs if r.get("split") == split]
            if not refs:
                raise ValueError(f"no refs with split {split!r} in {self.root} (splits there: "
                                 f"{splits}); pass --split with one of them")
        self.referring = [Sample(r["image_id"], s["sent"], (r["ann_id"],), "referring",
                                 f"{r['ref_id']}/{s.get('sent_id', n)}")
                          for r in refs for n, s in enumerate(r["sentences"])]
        if not self.referring:
            raise ValueError(f"the refs in {self.root} hold no sentences")
        self.generic = self._generic({r["image_id"] for r in refs})
        self._load = functools.lru_cache(maxsize=cache_images)(self._read_image)

    # ------------------------------------------------------------------ files

    def _image_dir(self, images) -> Path:
        if images is not None:
            return Path(images).expanduser()
        return self.root / "images" if (self.root / "images").is_dir() else self.root

    def _read_refs(self) -> list:
        for name in REF_FILES:
            path = self.root / name
            if path.is_file():
                if path.suffix == ".p":
                    with open(path, "rb") as f:
                        return pickle.load(f)
                return json.loads(path.read_text())
        raise FileNotFoundError(f"no refs file in {self.root}: expected one of {REF_FILES}")

    def _generic(self, image_ids) -> list:
        by_image = {}
        for a in self.annotations.values():
            if a["image_id"] in image_ids and a.get("category_id") in self.categories:
                by_image.setdefault((a["image_id"], a["category_id"]), []).append(a["id"])
        return [Sample(img, self.categories[cat], tuple(sorted(ids)), "generic",
                       f"generic/{img}/{cat}") for (img, cat), ids in sorted(by_image.items())]

    def _read_image(self, image_id: int) -> np.ndarray:
        path = self.image_dir / self.images[image_id]["file_name"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"could not read image {path} (image id {image_id}); "
                                    "pass --images with the folder that holds the files")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # ------------------------------------------------------------------ access

    def image(self, image_id: int) -> np.ndarray:
        """uint8 [H, W, 3] RGB."""
        return self._load(image_id)

    def mask(self, ann_id: int) -> np.ndarray:
        """bool [H, W] of one annotation (RLE, compressed or not, or polygons)."""
        ann = self.annotations[ann_id]
        im = self.images[ann["image_id"]]
        h, w = int(im["height"]), int(im["width"])
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")
                   if isinstance(seg["counts"], str) else seg["counts"]}
        return mask_utils.decode(rle).astype(bool)

    def target(self, sample: Sample) -> np.ndarray:
        """bool [n, H, W]: one mask per target annotation."""
        return np.stack([self.mask(a) for a in sample.ann_ids])

    def union(self, sample: Sample) -> np.ndarray:
        return self.target(sample).any(0)

    def vocabulary(self) -> list[str]:
        texts = [s.text for s in self.referring] + list(self.categories.values())
        return sorted({w for t in texts for w in re.findall(r"\w+", t.lower())})
