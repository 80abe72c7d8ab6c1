"""COCO export of a whole project: a pure function of the store's contents.

Masks are already COCO RLE in the store, so export copies them; area and bbox come from
pycocotools on the same RLE. Every instance is iscrowd 0 (many loaders drop iscrowd 1).
The referring part follows RefCOCO: one ref per expression, its sentence, and the ids of
the annotations of every object it refers to.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path

from pycocotools import mask as mask_utils

from app.formats._base import unique_stems
from app.formats._frames import frame_name
from app.project.store import ProjectStore

CATEGORY_IDS = "category_ids"  # setting: {category name: id} from imported datasets


def build_coco(store: ProjectStore) -> dict:
    with store.lock:  # one consistent view while other tabs keep editing
        return _build(store)


def _build(store: ProjectStore) -> dict:
    media = store.list_media()
    objects = {o["id"]: o for o in store.all_objects()}
    category_ids = _category_ids(store, {o["category"] for o in objects.values()})

    images, videos, image_id = [], [], {}
    # Names as media were added can repeat (two IMG_0001.jpg) or hold path parts (an API
    # client's "../x.png"): each media gets a unique, safe name; original_name keeps the given one.
    stems = unique_stems(media)
    for m in media:
        stem = stems[m["id"]]
        if m["kind"] == "video":
            videos.append({"id": m["id"], "name": stem + Path(m["path"]).suffix.lower(), "original_name": m["name"],
                           "width": m["width"], "height": m["height"], "length": m["frames"], "fps": m["fps"]})
        for frame in range(m["frames"]):
            image = {"id": len(images) + 1, "width": m["width"], "height": m["height"], "media_id": m["id"],
                     "original_name": m["name"]}
            if m["kind"] == "video":
                image.update(file_name=f"{stem}/{frame_name(frame)}.jpg", video_id=m["id"], frame_index=frame)
            else:
                image["file_name"] = stem + Path(m["path"]).suffix.lower()  # the stored file's own suffix
            image_id[m["id"], frame] = image["id"]
            images.append(image)

    rows = list(store.iter_masks())
    rles = [{"size": [r["height"], r["width"]], "counts": r["counts"].encode("ascii")} for r in rows]
    # area() per mask: batched, pycocotools 2.0.x sizes a uint8 array by the count (fails past 255).
    areas = [mask_utils.area(r) for r in rles]
    boxes = mask_utils.toBbox(rles) if rles else []
    annotations, anns_of_object = [], {}
    for row, area, bbox in zip(rows, areas, boxes):
        obj = objects[row["object_id"]]
        ann = {"id": len(annotations) + 1, "image_id": image_id[obj["media_id"], row["frame"]],
               "category_id": category_ids[obj["category"]],
               "segmentation": {"size": [row["height"], row["width"]], "counts": row["counts"]},
               "area": int(area), "bbox": [float(v) for v in bbox], "iscrowd": 0,
               "object_id": obj["id"], "track_id": obj["label"], "source": row["source"]}
        annotations.append(ann)
        anns_of_object.setdefault(obj["id"], []).append(ann["id"])

    refs = _refs(store, objects, category_ids, anns_of_object, image_id)
    return {
        "info": {"description": f"FlowLabel export of {store.path.name}", "version": "1.0",
                 "date_created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        "licenses": [],
        "videos": videos,
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": n} for n, i in category_ids.items()],
        "refs": refs,
    }


def _category_ids(store: ProjectStore, names: set[str]) -> dict[str, int]:
    """Ids an imported dataset gave its categories (kept in the project's settings), then new ids
    for the other names, in name order."""
    known = store.get_setting(CATEGORY_IDS, {}) or {}
    ids = {name: known[name] for name in sorted(names) if isinstance(known.get(name), int)}
    next_id = max(ids.values(), default=0) + 1
    for name in sorted(names - set(ids)):
        while next_id in ids.values():
            next_id += 1
        ids[name] = next_id
    return dict(sorted(ids.items(), key=lambda item: item[1]))


def _refs(store, objects, category_ids, anns_of_object, image_id) -> list[dict]:
    links: dict[int, list[int]] = {}
    for link in store.expression_objects():
        links.setdefault(link["expression_id"], []).append(link["object_id"])
    refs = []
    for expr in store.list_expressions():
        object_ids = links.get(expr["id"], [])
        ann_ids = [a for o in object_ids for a in anns_of_object.get(o, [])]
        first_object = objects[object_ids[0]] if object_ids else None
        refs.append({
            "ref_id": expr["id"], "expression_id": expr["id"],
            "image_id": image_id[expr["media_id"], 0], "media_id": expr["media_id"],
            "ann_id": ann_ids[0] if ann_ids else None, "ann_ids": ann_ids, "object_ids": object_ids,
            "category_id": category_ids[first_object["category"]] if first_object else None,
            "split": "train", "status": expr["status"],
            "sent_ids": [expr["id"]],
            "sentences": [{"sent_id": expr["id"], "sent": expr["text"].lower(), "raw": expr["text"],
                           "tokens": expr["text"].lower().split()}],
        })
    return refs


def write_coco(store: ProjectStore, out: str | Path) -> Path:
    """Write the export atomically: a reader never sees half a file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = build_coco(store)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".partial")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is an ordinary file
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
