"""Writing a world to disk: MeViS for videos, RefCOCO for images, plus world.json.

    video:  JPEGImages/<vid>/<00000>.jpg, meta_expressions.json, mask_dict.json, world.json
    image:  images/<name>.jpg, instances.json, refs(unc).p, refs.json, world.json

world.json (ours) describes every scene: its objects (shape, colour, size, radius, motion,
depth, centre per frame) and its expressions with their kinds, so that a run can be
checked against the truth. Only objects some expression names go into the dataset files
(mask_dict.json / instances.json), so the studio's importers take every entry.

Files are written into a temporary folder beside `out` and moved into place at the end; the
same seed gives the same bytes.
"""
from __future__ import annotations

import collections
import json
import pickle
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from engine import rle
from engine.demo_world.language import vocabulary
from engine.demo_world.scenes import images, video_clips
from engine.demo_world.world import IMAGE_CONFIG, VIDEO_CONFIG, WorldConfig

FORMAT = "flowlabel-demo-world"


def _jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


def _dump(data, path: Path) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


class _Staging:
    """A temporary folder beside `out`, moved to `out` when everything is written."""

    def __init__(self, out):
        self.out = Path(out)
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise FileExistsError(f"{self.out} exists and is not an empty folder; choose a new --out "
                                  "(nothing was written)")

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        if self.out.exists():
            self.out.rmdir()  # empty, checked above
        self.tmp.rename(self.out)
        return False


def _check_count(count) -> None:
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")


def write_video_dataset(out, seed: int, count: int, frames: int = 9, size: int = 64,
                        config: WorldConfig | None = None, jpeg_quality: int = 95) -> dict:
    """Write `count` clips of the seed's video world in MeViS layout; returns a summary."""
    _check_count(count)
    config = config or VIDEO_CONFIG
    meta, mask_dict, world = {"videos": {}}, {}, []
    kinds = collections.Counter()
    with _Staging(out) as tmp:
        for i, clip in enumerate(video_clips(seed, count, frames, size, config)):
            vid = f"s{seed}_{i:05d}"
            names = [f"{f:05d}" for f in range(frames)]
            for name, frame in zip(names, clip.frames):
                _jpeg(tmp / "JPEGImages" / vid / f"{name}.jpg", frame, jpeg_quality)
            named = sorted({t for e in clip.expressions for t in e.targets})
            anno = {}
            for obj in named:
                anno[obj] = str(len(mask_dict))
                mask_dict[anno[obj]] = [rle.encode(m) if m.any() else None for m in clip.visible[obj]]
            expressions = {}
            for n, e in enumerate(clip.expressions):
                expressions[str(n)] = {"exp": e.text, "obj_id": list(e.targets),
                                       "anno_id": [anno[t] for t in e.targets]}
                kinds[e.kind] += 1
            meta["videos"][vid] = {"expressions": expressions, "frames": names,
                                   "objects": {str(o): {"category": clip.objects[o].shape} for o in named}}
            world.append({"video": vid, **clip.describe(),
                          "anno_id": {str(o): a for o, a in anno.items()}})
        _dump(meta, tmp / "meta_expressions.json")
        _dump(mask_dict, tmp / "mask_dict.json")
        summary = {"format": FORMAT, "kind": "video", "seed": seed, "count": count, "frames": frames,
                   "size": size, "videos": count, "expressions": sum(kinds.values()), "objects": len(mask_dict),
                   "kinds": dict(sorted(kinds.items())), "vocabulary": vocabulary(config)}
        _dump({**summary, "scenes": world}, tmp / "world.json")
    return summary


def write_image_dataset(out, seed: int, count: int, size: int = 64, config: WorldConfig | None = None,
                        split: str = "train", splitby: str = "unc", jpeg_quality: int = 95) -> dict:
    """Write `count` images of the seed's image world in RefCOCO layout; returns a summary.

    One ref per referred object; its sentences are every expression naming it.
    """
    _check_count(count)
    config = config or IMAGE_CONFIG
    categories = [{"id": n + 1, "name": s, "supercategory": "shape"} for n, s in enumerate(config.shapes)]
    category_id = {c["name"]: c["id"] for c in categories}
    coco = {"info": {"description": f"{FORMAT} image seed {seed}"}, "images": [], "annotations": [],
            "categories": categories}
    refs, world = [], []
    kinds = collections.Counter()
    n_sentences = 0
    with _Staging(out) as tmp:
        for i, scene in enumerate(images(seed, count, size, config)):
            image_id = i + 1
            file_name = f"s{seed}_{i:05d}.jpg"
            _jpeg(tmp / "images" / file_name, scene.image, jpeg_quality)
            coco["images"].append({"id": image_id, "file_name": file_name, "width": size, "height": size})
            sentences = collections.defaultdict(list)  # object -> expressions, in order
            for e in scene.expressions:
                sentences[e.targets[0]].append(e)
                kinds[e.kind] += 1
            ann_of = {}
            for obj in sorted(sentences):
                mask = scene.visible[obj, 0]
                enc = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                ann_of[obj] = len(coco["annotations"]) + 1
                o = scene.objects[obj]
                coco["annotations"].append({
                    "id": ann_of[obj], "image_id": image_id, "category_id": category_id[o.shape],
                    "segmentation": rle.encode(mask), "area": int(mask_utils.area(enc)),
                    "bbox": [int(v) for v in mask_utils.toBbox(enc)], "iscrowd": 0,
                    "attributes": {"colour": o.colour, "size": o.size}})
            for obj, exprs in sentences.items():
                sent_ids = list(range(n_sentences, n_sentences + len(exprs)))
                n_sentences += len(exprs)
                refs.append({"ref_id": len(refs), "ann_id": ann_of[obj], "image_id": image_id,
                             "category_id": category_id[scene.objects[obj].shape], "split": split,
                             "file_name": file_name, "sent_ids": sent_ids,
                             "sentences": [{"sent_id": s, "sent": e.text, "raw": e.text, "tokens": e.text.split()}
                                           for s, e in zip(sent_ids, exprs)]})
            world.append({"image_id": image_id, "file_name": file_name, **scene.describe(),
                          "ann_id": {str(o): a for o, a in ann_of.items()}})
        _dump(coco, tmp / "instances.json")
        _dump(refs, tmp / "refs.json")
        with open(tmp / f"refs({splitby}).p", "wb") as f:
            pickle.dump(refs, f, protocol=2)
        summary = {"format": FORMAT, "kind": "image", "seed": seed, "count": count, "size": size,
                   "images": count, "expressions": n_sentences, "refs": len(refs), "split": split,
                   "kinds": dict(sorted(kinds.items())), "vocabulary": vocabulary(config)}
        _dump({**summary, "scenes": world}, tmp / "world.json")
    return summary
