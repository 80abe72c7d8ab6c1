"""How the field's own loaders read our exports, restated for the tests. No tests here.

The loaders themselves are not run: refer.py (github.com/lichengunc/refer) is Python 2 code
(print statements, cPickle) with no PyPI package, and ReferFormer's datasets/ytvos.py
(github.com/wjn922/ReferFormer) needs its whole training package. Each function below
follows, step by step, what that loader does with a dataset folder, as read in its source:
which files it opens, where, which keys it reads, and how it branches. The steps are
described in our own words and written as our own code; a loader's KeyError or TypeError
shows up here as the same exception.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

REFER_DATASETS = ("refcoco", "refcoco+", "refcocog", "refclef")


def refer_get_masks(data_root: Path, dataset: str = "refcoco", split_by: str = "unc") -> dict:
    """refer.py: REFER(data_root, dataset, splitBy), then getMask(ref) for every ref.

    Returns {ref_id: (mask uint8 [H, W], area)}. The steps:
      - the dataset name must be one of the four it knows (else it exits);
      - it loads <data_root>/<dataset>/refs(<splitBy>).p with pickle, and instances.json
        beside it with json, keeping images, annotations and categories;
      - its index reads ann id, image_id; image id; category id and name; and per ref
        ref_id, ann_id, category_id, image_id, then sentences[*].sent_id and .tokens; it
        looks each ref's annotation up by ann_id (a missing one is a KeyError);
      - getMask takes the ref's annotation and image; when segmentation[0] is a list it reads
        polygons (frPyObjects with the image's height and width), otherwise the segmentation
        itself must be a list of compressed RLEs; it decodes to [H, W, N], sums over N, casts
        to uint8, and adds up the parts' areas.
    """
    if dataset not in REFER_DATASETS:
        raise SystemExit(f"No refer dataset is called [{dataset}]")
    folder = Path(data_root) / dataset
    with open(folder / f"refs({split_by}).p", "rb") as f:
        refs = pickle.load(f)
    with open(folder / "instances.json") as f:
        instances = json.load(f)
    anns = {ann["id"]: ann for ann in instances["annotations"]}
    image_anns: dict = {}
    for ann in instances["annotations"]:
        image_anns.setdefault(ann["image_id"], []).append(ann)
    images = {image["id"]: image for image in instances["images"]}
    categories = {cat["id"]: cat["name"] for cat in instances["categories"]}
    ref_ann, category_refs, sentence_tokens = {}, {}, {}
    for ref in refs:
        category_refs.setdefault(ref["category_id"], []).append(ref["image_id"])
        ref_ann[ref["ref_id"]] = anns[ref["ann_id"]]
        for sent in ref["sentences"]:
            sentence_tokens[sent["sent_id"]] = sent["tokens"]
    assert categories and sentence_tokens
    out = {}
    for ref in refs:
        ann, image = ref_ann[ref["ref_id"]], images[ref["image_id"]]
        seg = ann["segmentation"]
        if type(seg[0]) is list:
            rle = mask_utils.frPyObjects(seg, image["height"], image["width"])
        else:
            rle = seg
        stack = mask_utils.decode(rle)
        out[ref["ref_id"]] = (np.sum(stack, axis=2).astype(np.uint8), int(sum(mask_utils.area(rle))))
    return out


def pycocotools_masks(instances: Path) -> dict:
    """COCO(instances.json).annToMask(ann) for every annotation: {ann id: mask uint8 [H, W]}."""
    coco = COCO(str(instances))
    return {ann_id: coco.annToMask(ann) for ann_id, ann in coco.anns.items()}


def referformer_samples(img_folder: Path, ann_file: Path) -> list[dict]:
    """ReferFormer's YTVOSDataset: prepare_metas(), then every frame of every expression.

    prepare_metas opens <img_folder>/meta.json (its "videos") and the expressions file (its
    "videos"); for each video of the expressions file it looks the video up in meta.json,
    sorts the frame names, and per expression reads "exp", int("obj_id"), and the category at
    meta.json videos[vid]["objects"][obj_id]["category"], obj_id used as written (a string).
    __getitem__ then opens <img_folder>/JPEGImages/<vid>/<frame>.jpg as RGB and
    <img_folder>/Annotations/<vid>/<frame>.png converted to "P", and takes pixels equal to
    the object id as the mask. (It then maps the category through its class list and
    samples frames; that part is the model's, not the dataset's.)
    """
    with open(Path(img_folder) / "meta.json") as f:
        metas = json.load(f)["videos"]
    with open(ann_file) as f:
        expressions = json.load(f)["videos"]
    samples = []
    for vid, data in expressions.items():
        vid_meta = metas[vid]
        frames = sorted(data["frames"])
        for exp in data["expressions"].values():
            obj_key = exp["obj_id"]
            sample = {"video": vid, "exp": exp["exp"], "obj_id": int(obj_key),
                      "category": vid_meta["objects"][obj_key]["category"], "masks": [], "sizes": []}
            for name in frames:
                image = Image.open(Path(img_folder) / "JPEGImages" / vid / f"{name}.jpg").convert("RGB")
                mask = Image.open(Path(img_folder) / "Annotations" / vid / f"{name}.png").convert("P")
                sample["masks"].append(np.array(mask) == sample["obj_id"])
                sample["sizes"].append(image.size)
            samples.append(sample)
    return samples
