"""Ref-YouTube-VOS / Ref-DAVIS17 in ReferFormer's layout.

    meta_expressions.json  {"videos": {vid: {"expressions": {"0": {"exp": str, "obj_id": "1"}},
                                             "frames": ["00000", ...]}}}
    JPEGImages/<vid>/<frame>.jpg
    Annotations/<vid>/<frame>.png   palette PNG, pixel = obj_id, 0 = background
    meta.json              {"videos": {vid: {"objects": {obj_id: {"category": str,
                                                          "frames": [frames it shows in]}}}}}

meta.json is YouTube-VOS's object table, which ReferFormer's training reader opens beside
JPEGImages/ and Annotations/ to find each expression's category (objects[obj_id]["category"]).
Import takes categories from it when meta_expressions.json has no "objects" (ours).

An object's id is its label in the project (1..255). One expression names one object; an
expression of several objects is written with the first as "obj_id" and all of them in
"obj_ids" (our key; other readers see the first object only, and the report says so).
A palette PNG holds one id per pixel: where objects overlap, the higher id wins and the
report counts the pixels (they do not come back on import; mevis and coco keep them).
Image media are skipped (videos only). An Annotations PNG is written for every frame.

ReferFormer keeps the json apart from the frames (ref-youtube-vos/meta_expressions/train/
meta_expressions.json, ref-youtube-vos/train/JPEGImages): pass the json and media_root=
ref-youtube-vos/train (--media-root on the command line). Ref-DAVIS17 is the same.

Import: frames without a PNG have no masks (as in the validation split); ids in a PNG that no
expression names are skipped with a note; with an "objects" table, any other id is an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.formats import _frames, _video
from app.formats._base import (
    ExportReport,
    ImportReport,
    Problems,
    as_int,
    encode_counts,
    export_folder,
    given_name,
    read_json,
    snapshot,
    unique_stems,
    write_json_atomic,
)
from app.formats._plan import ExpressionPlan, MediaPlan, ObjectPlan, Plan, apply_plan
from app.project.store import ProjectStore
from engine import rle

MAX_ID = 255


def palette() -> list[int]:
    """The DAVIS / PASCAL VOC palette: id 1 is dark red, 2 green, 3 olive, ..."""
    colours = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours += [r, g, b]
    return colours


_PALETTE = palette()


def write_palette_png(path: Path, ids: np.ndarray) -> None:
    image = Image.frombytes("P", (ids.shape[1], ids.shape[0]), np.ascontiguousarray(ids, np.uint8).tobytes())
    image.putpalette(_PALETTE)
    image.save(path, optimize=False)


def read_id_png(path: Path, problems: Problems, entry: str) -> np.ndarray | None:
    """A palette (P) or grey (L) PNG -> uint8 ids [H, W]; colour PNGs carry no ids."""
    too_big = _frames.header_problem(path)
    if too_big:
        problems.add(path, entry, f"mask refused: {too_big}")
        return None
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                problems.add(path, entry, f"is {image.format or 'not an image'}, not PNG")
                return None
            if image.mode not in ("P", "L"):
                problems.add(path, entry, f"is a {image.mode} PNG; object ids need a palette (P) or grey (L) "
                                          "PNG whose pixel values are the ids")
                return None
            return np.array(image, np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        problems.add(path, entry, f"cannot be read as a PNG ({e})")
        return None


# --- export ----------------------------------------------------------------------------------

def export_ytvos(store: ProjectStore, out, jpeg_quality: int = 95) -> ExportReport:
    out = Path(out)
    snap = snapshot(store)
    report = ExportReport("ytvos", out)
    videos = _video.video_media(snap, report, "ytvos")
    _video.too_many_labels(snap, videos, MAX_ID, "ytvos")
    stems = unique_stems(videos)
    meta, objects_meta, overlap, multi, n_masks = {"videos": {}}, {"videos": {}}, 0, 0, 0
    with export_folder(out, report) as tmp:
        for m in videos:
            vid = stems[m["id"]]
            names = _video.write_frames(store, m, tmp, vid, jpeg_quality)
            folder = tmp / "Annotations" / vid
            folder.mkdir(parents=True)
            objects = snap.objects_of_media(m["id"])
            seen: dict[int, list[str]] = {o["label"]: [] for o in objects}  # label -> frames it shows in
            for f, name in enumerate(names):
                ids = np.zeros((m["height"], m["width"]), np.uint8)
                for o in objects:  # by label: a higher id wins a shared pixel
                    row = snap.masks.get(o["id"], {}).get(f)
                    if row is None:
                        continue
                    mask = rle.decode({"size": [row["height"], row["width"]], "counts": row["counts"]})
                    overlap += int(np.count_nonzero(ids[mask]))
                    ids[mask] = o["label"]
                    n_masks += 1
                write_palette_png(folder / f"{name}.png", ids)
                for label in np.flatnonzero(np.bincount(ids.ravel(), minlength=MAX_ID + 1)[1:]) + 1:
                    seen[int(label)].append(name)
            expressions = {}
            for n, e in enumerate(snap.expressions_of_media(m["id"])):
                labels = [str(snap.objects[o]["label"]) for o in snap.links.get(e["id"], [])]
                entry = {"exp": e["text"], "obj_id": labels[0] if labels else None}
                if len(labels) > 1:
                    entry["obj_ids"] = labels
                    multi += 1
                expressions[str(n)] = entry
            meta["videos"][vid] = _video.video_entry(snap, m, names, expressions, lambda o: o["label"])
            objects_meta["videos"][vid] = {"objects": {str(o["label"]): {"category": o["category"],
                                                                         "frames": seen[o["label"]]}
                                                       for o in objects}}
        if overlap:
            report.warnings.append(f"{overlap} pixel(s) belong to several objects; a palette PNG holds one id "
                                   "per pixel, the higher id was written (export as mevis to keep overlaps)")
        if multi:
            report.warnings.append(f"{multi} expression(s) name several objects: obj_id is the first, "
                                   "obj_ids lists all (standard readers use obj_id only)")
        write_json_atomic(meta, tmp / "meta_expressions.json")
        write_json_atomic(objects_meta, tmp / "meta.json")
        report.written = {"videos": len(videos), "frames": sum(m["frames"] for m in videos),
                          "expressions": sum(len(v["expressions"]) for v in meta["videos"].values()),
                          "masks": n_masks}
    return report


# --- import ----------------------------------------------------------------------------------

def import_ytvos(store: ProjectStore, src, media_root=None, fps: float | None = None) -> ImportReport:
    """Import meta_expressions.json (or its folder) with JPEGImages/ and Annotations/ under
    media_root (default: the json's folder); all or nothing."""
    path = _video.meta_path(src)
    root = Path(media_root) if media_root else path.parent
    problems = Problems(path.parent)
    plan = Plan("ytvos", path)
    videos = _video.read_videos(path, problems)
    categories = _objects_meta(root / "meta.json", problems) if videos else {}
    for vid, video in videos.items():
        if video.get("objects") is None and isinstance(categories.get(vid), dict):
            video = {**video, "objects": categories[vid].get("objects")}  # the YouTube-VOS place for them
        _read_video(vid, video, path, root, fps, problems, plan)
    return apply_plan(store, plan, problems)


def _objects_meta(path: Path, problems: Problems) -> dict:
    """YouTube-VOS's meta.json beside JPEGImages/: {"videos": {vid: {"objects": {id: {category}}}}}."""
    if not path.is_file():
        return {}
    data = read_json(path, problems)
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("videos"), dict)):
        problems.add(path, "", 'must be a JSON object {"videos": {video id: {"objects": {...}}}}')
        return {}
    return data["videos"] if data else {}


def _read_video(vid, video, path, root, fps, problems, plan) -> None:
    entry = f"videos[{vid!r}]"
    frames = video["frames"]
    table = _video.objects_table(video, problems, path, entry, 1, MAX_ID)
    # Masks: every id of every PNG.
    masks: dict[int, dict[int, str]] = {}
    size, missing, before = None, 0, len(problems)
    for f, name in enumerate(frames):
        png = root / "Annotations" / vid / f"{name}.png"
        if not png.is_file():
            missing += 1
            continue
        ids = read_id_png(png, problems, f"{entry} frame {name!r}")
        if ids is None:
            continue
        if size is None:
            size = ids.shape
        elif ids.shape != size:
            problems.add(png, f"{entry} frame {name!r}", f"mask is {ids.shape[1]}x{ids.shape[0]} but the "
                                                        f"video's other masks are {size[1]}x{size[0]}")
            continue
        for oid in np.unique(ids):
            oid = int(oid)
            if oid == 0:
                continue
            if table is not None and oid not in table:
                problems.add(png, f"{entry} frame {name!r}", f"unknown object id {oid}: the video's objects "
                                                            f"are {sorted(table)}")
                continue
            masks.setdefault(oid, {})[f] = encode_counts(ids == oid)
    if len(problems) > before:
        return
    if missing == len(frames):
        plan.skipped.append((entry, "has no Annotations PNGs: imported without masks"))
    elif missing:
        plan.skipped.append((entry, f"{missing} of {len(frames)} frames have no Annotations PNG: no masks there"))
    known = set(table) if table is not None else set(masks) if missing < len(frames) else None

    plan.media[vid] = MediaPlan(given_name(video, f"{vid}{_frames.LOSSLESS_EXT}"), entry, fps=_video.fps_of(video, fps),
                                        frames=[root / "JPEGImages" / vid / f"{name}.jpg" for name in frames],
                                        size=(size[1], size[0]) if size else None, n_frames=len(frames))
    named = set()
    for n, (key, exp) in enumerate(video.get("expressions", {}).items()):
        e_entry = f"{entry} expressions[{key!r}]"
        text = _video.expression_text(exp, problems, path, e_entry, plan.skipped)
        if text is None:
            continue
        ids = exp.get("obj_ids") if exp.get("obj_ids") is not None else [exp.get("obj_id")]
        if not isinstance(ids, list):
            problems.add(path, e_entry, "obj_ids must be a list")
            continue
        if ids == [None]:  # e.g. a validation split: the expression names an object still unmasked
            key = ("exp", vid, n)
            plan.objects[key] = ObjectPlan(vid)
            plan.expressions.append(ExpressionPlan(vid, text, [key]))
            continue
        keys = []
        for oid in ids:
            oid = as_int(oid, problems, path, e_entry, "obj_id", 1, MAX_ID)
            if oid is None:
                break
            if known is not None and oid not in known:
                problems.add(path, e_entry, f"unknown obj_id {oid}: "
                                            + (f"the video's objects are {sorted(known)}" if known else
                                               "the video's masks hold no object"))
                break
            keys.append((vid, oid))
        else:
            named.update(k[1] for k in keys)
            for k in keys:
                category = (table or {}).get(k[1], "object")
                plan.objects.setdefault(k, ObjectPlan(vid, k[1], category))
            plan.expressions.append(ExpressionPlan(vid, text, keys))
    for oid in sorted(set(masks) - named):
        plan.skipped.append((f"{entry} object {oid}", "has masks but no expression names it; not imported"))
    for oid in named:
        plan.objects[(vid, oid)].masks = masks.get(oid, {})
