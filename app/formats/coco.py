"""COCO instances: export (RLE, or polygons as a lossy option) and import (RLE or polygons).

Export reuses app.formats.coco_build.build_coco/write_coco: one image per frame, iscrowd 0, area
and bbox from the mask, plus the referring part ("refs": one per expression, with the ids
of the objects it names). Video frames are images with video_id and frame_index; "videos"
lists the videos.

polygons=True writes each mask as the outlines of its parts. This is LOSSY: a polygon has no
holes, so holes inside a mask are filled (a ring becomes a disc). Parts and their outlines
are kept exactly (outlines run a quarter pixel inside the mask's border, so pycocotools
rasterises them back to the same pixels). The report counts the masks that changed. Use
the RLE export to keep every mask exact.

Import reads what the export writes, and plain COCO files from elsewhere:
  - segmentation as compressed RLE (counts str), uncompressed RLE (counts list) or polygons;
  - images with video_id/frame_index are frames of one video (assembled losslessly, see
    _frames.py); other images are image media;
  - an annotation with "object_id" (ours) joins the other annotations of that object (one
    per frame); otherwise each annotation is one object;
  - "refs" (ours, RefCOCO-like) give the expressions: one per sentence, naming objects by
    "object_ids" or by annotation ("ann_ids"/"ann_id"). A file without refs gets one
    expression per object, its text the category name, to be rewritten by annotators.
Images are looked up under media_root (default: <json folder>/images if it exists, else
the json's folder) by their file_name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from pycocotools import mask as mask_utils

from app.formats import _frames
from app.formats._base import (
    ExportReport,
    FormatError,
    ImportReport,
    Problems,
    as_int,
    clean_text,
    decode_rle,
    encode_counts,
    given_name,
    read_json,
    snapshot,
    write_json_atomic,
)
from app.formats._plan import ExpressionPlan, MediaPlan, ObjectPlan, Plan, apply_plan
from app.formats._polygons import checked_polygons, polygons_to_mask
from app.formats._polygons import outer_polygons as mask_to_polygons
from app.formats.coco_build import build_coco, write_coco
from app.media import limits
from app.project.store import ProjectStore

POLYGON_WARNING = ("polygons are lossy: holes inside a mask are filled (a polygon outline cannot "
                   "hold them); export as coco (RLE) to keep masks exact")


# --- export ----------------------------------------------------------------------------------

def export_coco(store: ProjectStore, out, polygons: bool = False, images_dir=None,
                jpeg_quality: int = 95) -> ExportReport:
    """Write COCO instances JSON to `out`; optionally the images/frames under `images_dir`."""
    out = Path(out)
    fmt = "coco-polygons" if polygons else "coco"
    report = ExportReport(fmt, out)
    if not polygons and images_dir is None:
        write_coco(store, out)  # the studio's own export, unchanged
        snap = snapshot(store)
        report.written = {"images": sum(m["frames"] for m in snap.media), "expressions": len(snap.expressions),
                          "masks": sum(len(v) for v in snap.masks.values())}
        return report
    with store.transaction():  # the JSON and the media rows from one moment
        data = build_coco(store)
        media = {m["id"]: m for m in store.list_media()}
    if polygons:
        changed = to_polygons(data)
        report.warnings.append(POLYGON_WARNING + (f"; {changed} of {len(data['annotations'])} masks here "
                                                  "changed (they had holes)" if changed else
                                                  "; no mask here had holes"))
    if images_dir is not None:
        write_images(store, data, media, Path(images_dir), jpeg_quality)
    write_json_atomic(data, out)
    report.written = {"images": len(data["images"]), "expressions": len(data["refs"]),
                      "masks": len(data["annotations"])}
    return report


def write_images(store: ProjectStore, data: dict, media: dict[int, dict], folder: Path, quality: int) -> None:
    done = set()
    for image in data["images"]:
        m = media[image["media_id"]]
        if m["id"] in done:
            continue
        done.add(m["id"])
        path = store.media_dir / m["path"]
        if m["kind"] == "image":
            _frames.write_image_media(path, folder / image["file_name"], quality)
        else:
            _frames.write_video_frames(path, m["frames"], folder / PurePosixPath(image["file_name"]).parent,
                                       quality)


def to_polygons(data: dict) -> int:
    """Replace every RLE segmentation by polygons; returns how many masks changed."""
    changed = 0
    for ann in data["annotations"]:
        seg = ann["segmentation"]
        h, w = seg["size"]
        mask = mask_utils.decode({"size": [h, w], "counts": seg["counts"].encode("ascii")}).astype(bool)
        polygons = mask_to_polygons(mask)
        changed += not np.array_equal(polygons_to_mask(polygons, h, w), mask)
        ann["segmentation"] = polygons  # area and bbox stay those of the mask, the truth
    return changed


# --- import ----------------------------------------------------------------------------------

@dataclass
class Instances:
    """What an instances file holds, keyed for refs to find."""
    image_media: dict[int, tuple[str, int]] = field(default_factory=dict)  # image id -> (media key, frame)
    ann_object: dict[int, tuple] = field(default_factory=dict)  # annotation id -> object key
    image_ids: set[int] = field(default_factory=set)  # every id declared, readable or not
    categories: dict[int, str] = field(default_factory=dict)


def default_media_root(folder: Path) -> Path:
    return folder / "images" if (folder / "images").is_dir() else folder


def import_coco(store: ProjectStore, src, media_root=None) -> ImportReport:
    """Import a COCO instances JSON (RLE or polygons); all or nothing."""
    path = Path(src)
    if path.is_dir():
        candidates = [path / n for n in ("annotations.json", "instances.json", "coco.json") if (path / n).is_file()]
        if len(candidates) != 1:
            raise FormatError(f"{path} is a folder; pass the COCO .json file itself")
        path = candidates[0]
    media_root = Path(media_root) if media_root else default_media_root(path.parent)
    problems = Problems(path.parent)
    plan = Plan("coco", path)
    data = read_json(path, problems)
    if data is not None:
        inst = read_instances(data, path, media_root, problems, plan)
        if isinstance(data, dict) and data.get("refs") is not None:
            read_refs(data["refs"], path, "refs", inst, problems, plan)
            drop_unreferred(plan, keep_media=True)
        else:
            for key, op in plan.objects.items():
                plan.expressions.append(ExpressionPlan(op.media, op.category, [key]))
            if plan.objects:
                plan.notes.append(f"the file has no refs: each of its {len(plan.objects)} objects got one "
                                  "expression, its category name; rewrite them in the studio")
    return apply_plan(store, plan, problems)


def _file_under(root: Path, name, problems, file, entry) -> Path | None:
    if not isinstance(name, str) or not name:
        problems.add(file, entry, "file_name must be a non-empty string")
        return None
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        problems.add(file, entry, f"file_name {name!r} must be relative to the images folder, without '..'")
        return None
    return root.joinpath(*rel.parts)


def read_instances(data, file: Path, media_root: Path, problems: Problems, plan: Plan) -> Instances:
    inst = Instances()
    if not isinstance(data, dict):
        problems.add(file, "", "a COCO file is a JSON object with images, annotations and categories")
        return inst
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key, []), list):
            problems.add(file, key, "must be a list")
            return inst
    for i, cat in enumerate(data.get("categories", [])):
        entry = f"categories[{i}]"
        cid = as_int(cat.get("id") if isinstance(cat, dict) else None, problems, file, entry, "id")
        name = clean_text(cat.get("name") if isinstance(cat, dict) else None, problems, file, entry, "name")
        if cid is not None and name:
            inst.categories[cid] = name
            plan.category_ids.setdefault(name, cid)

    videos = {}
    for i, video in enumerate(data.get("videos") or []):
        vid = as_int(video.get("id") if isinstance(video, dict) else None, problems, file, f"videos[{i}]", "id")
        if vid is not None:
            videos[vid] = video
    sizes: dict[int, tuple[int, int]] = {}  # image id -> (h, w)
    video_frames: dict[str, dict[int, Path]] = {}
    for i, image in enumerate(data.get("images", [])):
        entry = f"images[{i}]"
        if not isinstance(image, dict):
            problems.add(file, entry, "must be an object")
            continue
        entry = f"images[{i}] (id {image.get('id')})"
        iid = as_int(image.get("id"), problems, file, entry, "id")
        if isinstance(iid, int):
            inst.image_ids.add(iid)
        w = as_int(image.get("width"), problems, file, entry, "width", 1)
        h = as_int(image.get("height"), problems, file, entry, "height", 1)
        path = _file_under(media_root, image.get("file_name"), problems, file, entry)
        if None in (iid, w, h, path):
            continue
        too_big = limits.size_problem(w, h)
        if too_big:
            problems.add(file, entry, f"image of {w}x{h}: {too_big}")
            continue
        if iid in sizes:
            problems.add(file, entry, f"image id {iid} is used twice")
            continue
        sizes[iid] = (h, w)
        if image.get("video_id") is None:
            key = f"image:{iid}"
            plan.media[key] = MediaPlan(path.name, entry, file=path, size=(w, h))  # so a round trip keeps file names
            inst.image_media[iid] = (key, 0)
            continue
        vid = as_int(image["video_id"], problems, file, entry, "video_id")
        # A video has no more frames than the file has images (nor than the limit).
        frame = as_int(image.get("frame_index"), problems, file, entry, "frame_index", 0,
                       min(len(data["images"]), limits.FRAMES.value) - 1)
        if vid is None or frame is None:
            continue
        key = f"video:{vid}"
        frames = video_frames.setdefault(key, {})
        mp = plan.media.get(key)
        if mp is None:
            video = videos.get(vid, {})
            name = video.get("name") if isinstance(video.get("name"), str) else f"video_{vid}"
            fps = video.get("fps") if isinstance(video.get("fps"), (int, float)) else None
            mp = plan.media[key] = MediaPlan(given_name(video, Path(name).stem + _frames.LOSSLESS_EXT), f"video {vid}", frames=[], fps=fps,
                                             size=(w, h))
        if (w, h) != mp.size:
            problems.add(file, entry, f"frame is {w}x{h} but other frames of video {vid} are "
                                      f"{mp.size[0]}x{mp.size[1]}")
        elif frame in frames:
            problems.add(file, entry, f"video {vid} has frame_index {frame} twice")
        else:
            frames[frame] = path
            inst.image_media[iid] = (key, frame)
    for key, frames in video_frames.items():
        mp = plan.media[key]
        if sorted(frames) != list(range(len(frames))):
            missing = sorted(set(range(max(frames) + 1)) - set(frames))[:5]
            problems.add(file, mp.entry, f"frames are missing: frame_index {missing} has no image")
            continue
        mp.frames = [frames[i] for i in range(len(frames))]
        mp.n_frames = len(frames)

    seen_ids = set()
    for i, ann in enumerate(data.get("annotations", [])):
        entry = f"annotations[{i}]"
        if not isinstance(ann, dict):
            problems.add(file, entry, "must be an object")
            continue
        entry = f"annotations[{i}] (id {ann.get('id')})"
        aid = as_int(ann.get("id"), problems, file, entry, "id")
        iid = as_int(ann.get("image_id"), problems, file, entry, "image_id")
        cid = as_int(ann.get("category_id"), problems, file, entry, "category_id")
        if None in (aid, iid, cid):
            continue
        if aid in seen_ids:
            problems.add(file, entry, f"annotation id {aid} is used twice")
            continue
        seen_ids.add(aid)
        if iid not in inst.image_ids:
            problems.add(file, entry, f"unknown image_id {iid}: no image has it")
            continue
        if cid not in inst.categories:
            problems.add(file, entry, f"unknown category_id {cid}: no category has it")
            continue
        if iid not in inst.image_media or iid not in sizes:
            continue  # its image had a problem, already reported
        h, w = sizes[iid]
        mask = _segmentation(ann.get("segmentation"), h, w, problems, file, entry)
        if mask is None:
            continue
        media_key, frame = inst.image_media[iid]
        if ann.get("object_id") is not None:
            oid = as_int(ann["object_id"], problems, file, entry, "object_id")
            if oid is None:
                continue
            key = ("object", oid)
        else:
            key = ("ann", aid)
        op = plan.objects.get(key)
        if op is None:
            label = ann.get("track_id") if isinstance(ann.get("track_id"), int) else None
            op = plan.objects[key] = ObjectPlan(media_key, label, inst.categories[cid])
        elif op.media != media_key:
            problems.add(file, entry, f"object {key[1]} is on two media (images {op.media} and {media_key})")
            continue
        if frame in op.masks or frame in op.sources:
            problems.add(file, entry, f"object {key[1]} has two annotations on frame {frame}")
            continue
        counts = encode_counts(mask)
        source = ann.get("source")
        op.sources[frame] = source if isinstance(source, str) and source else "import"
        if counts is not None:
            op.masks[frame] = counts
        inst.ann_object[aid] = key
    check_object_counts(plan, file, problems)
    return inst


def check_object_counts(plan: Plan, file, problems: Problems) -> None:
    per_media: dict[str, int] = {}
    for op in plan.objects.values():
        per_media[op.media] = per_media.get(op.media, 0) + 1
    for key, n in per_media.items():
        too_many = limits.OBJECTS.exceeded(n)
        if too_many:
            problems.add(file, plan.media[key].entry, too_many)


def _segmentation(seg, h, w, problems, file, entry) -> np.ndarray | None:
    """RLE, a list of polygons, or a list of RLEs (refclef) or of both -> their union."""
    if isinstance(seg, dict):
        return decode_rle(seg, h, w, problems, file, entry)
    if not isinstance(seg, list) or not seg:
        problems.add(file, entry, "segmentation must be RLE {size, counts}, or a non-empty list of polygons "
                                  "or RLEs")
        return None
    rles = [s for s in seg if isinstance(s, dict)]
    polygons, why = checked_polygons([s for s in seg if not isinstance(s, dict)], h, w)
    if why:
        problems.add(file, entry, why)
        return None
    mask = polygons_to_mask(polygons, h, w)
    for j, value in enumerate(rles):
        part = decode_rle(value, h, w, problems, file, f"{entry} segmentation RLE {j}")
        if part is None:
            return None
        mask |= part
    return mask


def read_refs(refs, file: Path, where: str, inst: Instances, problems: Problems, plan: Plan) -> None:
    """RefCOCO-style refs -> expressions: one per sentence, linked to the ref's objects."""
    if not isinstance(refs, list):
        problems.add(file, where, "refs must be a list")
        return
    for i, ref in enumerate(refs):
        entry = f"{where}[{i}]"
        if not isinstance(ref, dict):
            problems.add(file, entry, "must be an object")
            continue
        entry = f"{where}[{i}] (ref_id {ref.get('ref_id')})"
        iid = as_int(ref.get("image_id"), problems, file, entry, "image_id")
        if iid is None:
            continue
        if iid not in inst.image_media:
            if iid not in inst.image_ids:  # else its image's problem is reported already
                problems.add(file, entry, f"unknown image_id {iid}: no image has it")
            continue
        media_key = inst.image_media[iid][0]
        keys = _ref_objects(ref, media_key, i, inst, problems, file, entry, plan)
        if keys is None:
            continue
        sentences = ref.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            plan.skipped.append((f"{problems.name(file)}: {entry}", "has no sentences"))
            continue
        status = ref.get("status") if isinstance(ref.get("status"), str) else "todo"
        for j, sentence in enumerate(sentences):
            s_entry = f"{entry} sentences[{j}]"
            raw = sentence.get("raw", sentence.get("sent")) if isinstance(sentence, dict) else None
            text = clean_text(raw, problems, file, s_entry, "sentence")
            if text == "":
                plan.skipped.append((f"{problems.name(file)}: {s_entry}", "empty sentence"))
            elif text is not None:
                plan.expressions.append(ExpressionPlan(media_key, text, keys, status))


def _ref_objects(ref, media_key, i, inst, problems, file, entry, plan) -> list | None:
    category = inst.categories.get(ref.get("category_id"), "object")
    if ref.get("object_ids") is not None:  # ours: objects by id, masks or not
        ids = ref["object_ids"]
        if not isinstance(ids, list):
            problems.add(file, entry, "object_ids must be a list")
            return None
        keys = []
        for oid in ids:
            oid = as_int(oid, problems, file, entry, "object id")
            if oid is None:
                return None
            key = ("object", oid)
            op = plan.objects.setdefault(key, ObjectPlan(media_key, None, category))
            if op.media != media_key:
                problems.add(file, entry, f"object {oid} is not on the ref's image")
                return None
            keys.append(key)
    else:
        ann_ids = ref.get("ann_ids", ref.get("ann_id"))
        ann_ids = ann_ids if isinstance(ann_ids, list) else [ann_ids]
        keys = []
        for aid in ann_ids:
            if aid is None or aid == -1:  # gRefCOCO: -1 means no target
                continue
            aid = as_int(aid, problems, file, entry, "ann_id")
            if aid is None:
                return None
            if aid not in inst.ann_object:
                problems.add(file, entry, f"unknown ann_id {aid}: no annotation has it")
                return None
            key = inst.ann_object[aid]
            if plan.objects[key].media != media_key:
                problems.add(file, entry, f"ann_id {aid} is not on the ref's image {ref.get('image_id')}")
                return None
            keys.append(key)
    if not keys:  # an expression refers to something in the store: an object without masks
        key = ("ref", i)
        plan.objects[key] = ObjectPlan(media_key, None, category)
        keys = [key]
    return keys


def drop_unreferred(plan: Plan, keep_media: bool) -> None:
    """Objects no expression names cannot live in the store; drop them (and media, if asked)."""
    named = {k for e in plan.expressions for k in e.objects}
    unnamed = [k for k in plan.objects if k not in named]
    for key in unnamed:
        del plan.objects[key]
    if unnamed:
        plan.skipped.append(("annotations", f"{len(unnamed)} object(s) are named by no ref; not imported"))
    if not keep_media:
        used = {e.media for e in plan.expressions}
        unused = [k for k in plan.media if k not in used]
        for key in unused:
            del plan.media[key]
        if unused:
            plan.skipped.append(("images", f"{len(unused)} image(s)/video(s) have no ref; not imported"))
