"""MeViS: expressions that may name several objects, masks as per-frame RLE.

    meta_expressions.json  {"videos": {vid: {"expressions": {"0": {"exp": str, "obj_id": [int],
                                             "anno_id": [str]}}, "frames": ["00000", ...]}}}
    mask_dict.json         {anno_id: [COCO RLE or null, one per frame]}
    JPEGImages/<vid>/<frame>.jpg

An anno_id is one object's track (the project's object id, as a string); obj_id is the object's
index in its video, 0-based as in MeViS (the project's label minus 1). The target of an
expression is the union of its objects' masks; each object is kept apart, so overlaps survive.
Image media are skipped (videos only).

Import: without mask_dict.json (a test split) expressions come in without masks.
"""
from __future__ import annotations

from pathlib import Path

from app.formats import _frames, _video
from app.formats._base import (
    ExportReport,
    ImportReport,
    Problems,
    as_int,
    decode_rle,
    encode_counts,
    export_folder,
    given_name,
    read_json,
    snapshot,
    unique_stems,
    write_json_atomic,
)
from app.formats._plan import ExpressionPlan, MediaPlan, ObjectPlan, Plan, apply_plan
from app.media import limits
from app.project.store import ProjectStore

# --- export ----------------------------------------------------------------------------------

def export_mevis(store: ProjectStore, out, jpeg_quality: int = 95) -> ExportReport:
    out = Path(out)
    snap = snapshot(store)
    report = ExportReport("mevis", out)
    videos = _video.video_media(snap, report, "mevis")
    stems = unique_stems(videos)
    meta, mask_dict, n_masks = {"videos": {}}, {}, 0
    with export_folder(out, report) as tmp:
        for m in videos:
            vid = stems[m["id"]]
            names = _video.write_frames(store, m, tmp, vid, jpeg_quality)
            for o in snap.objects_of_media(m["id"]):
                rows = snap.masks.get(o["id"], {})
                mask_dict[str(o["id"])] = [
                    {"size": [rows[f]["height"], rows[f]["width"]], "counts": rows[f]["counts"]} if f in rows
                    else None for f in range(m["frames"])]
                n_masks += len(rows)
            expressions = {}
            for n, e in enumerate(snap.expressions_of_media(m["id"])):
                objects = [snap.objects[o] for o in snap.links.get(e["id"], [])]
                expressions[str(n)] = {"exp": e["text"], "obj_id": [o["label"] - 1 for o in objects],
                                       "anno_id": [str(o["id"]) for o in objects]}
            meta["videos"][vid] = _video.video_entry(snap, m, names, expressions, lambda o: o["label"] - 1)
        write_json_atomic(meta, tmp / "meta_expressions.json")
        write_json_atomic(mask_dict, tmp / "mask_dict.json")
        report.written = {"videos": len(videos), "frames": sum(m["frames"] for m in videos),
                          "expressions": sum(len(v["expressions"]) for v in meta["videos"].values()),
                          "objects": len(mask_dict), "masks": n_masks}
    return report


# --- import ----------------------------------------------------------------------------------

def import_mevis(store: ProjectStore, src, media_root=None, fps: float | None = None) -> ImportReport:
    """Import meta_expressions.json (or its folder) with mask_dict.json beside it and
    JPEGImages/ under media_root (default: the json's folder); all or nothing."""
    path = _video.meta_path(src)
    root = Path(media_root) if media_root else path.parent
    problems = Problems(path.parent)
    plan = Plan("mevis", path)
    videos = _video.read_videos(path, problems)
    dict_path = path.parent / "mask_dict.json"
    mask_dict = None
    if dict_path.exists():
        mask_dict = read_json(dict_path, problems)
        if mask_dict is not None and not isinstance(mask_dict, dict):
            problems.add(dict_path, "", "must be a JSON object {anno_id: [RLE or null per frame]}")
            mask_dict = None
    elif videos:
        plan.skipped.append(("mask_dict.json", "is missing: expressions imported without masks"))
    owner: dict[str, str] = {}  # anno_id -> video
    for vid, video in videos.items():
        _read_video(vid, video, path, dict_path, mask_dict, root, fps, owner, problems, plan)
    if mask_dict:
        unused = [a for a in mask_dict if a not in owner]
        if unused:
            plan.skipped.append(("mask_dict.json", f"{len(unused)} anno_id(s) named by no expression "
                                                   f"(e.g. {unused[0]!r}); not imported"))
    return apply_plan(store, plan, problems)


def _read_video(vid, video, path, dict_path, mask_dict, root, fps, owner, problems, plan) -> None:
    entry = f"videos[{vid!r}]"
    frames = video["frames"]
    table = _video.objects_table(video, problems, path, entry, 0, None)
    media = MediaPlan(given_name(video, f"{vid}{_frames.LOSSLESS_EXT}"), entry, fps=_video.fps_of(video, fps),
                      frames=[root / "JPEGImages" / vid / f"{name}.jpg" for name in frames], n_frames=len(frames))
    obj_of: dict[str, int] = {}  # anno_id -> obj_id in this video
    for key, exp in video.get("expressions", {}).items():
        e_entry = f"{entry} expressions[{key!r}]"
        text = _video.expression_text(exp, problems, path, e_entry, plan.skipped)
        if text is None:
            continue
        obj_ids, anno_ids = exp.get("obj_id"), exp.get("anno_id")
        if not isinstance(obj_ids, list) or not isinstance(anno_ids, list) or len(obj_ids) != len(anno_ids):
            problems.add(path, e_entry, "obj_id and anno_id must be lists of the same length")
            continue
        keys = []
        for oid, aid in zip(obj_ids, anno_ids):
            oid = as_int(oid, problems, path, e_entry, "obj_id", 0)
            if oid is None or isinstance(aid, bool) or not isinstance(aid, (int, str)):
                if oid is not None:
                    problems.add(path, e_entry, f"anno_id {aid!r} must be a string or an integer")
                break
            aid = str(aid)
            if table is not None and oid not in table:
                problems.add(path, e_entry, f"unknown obj_id {oid}: the video's objects are {sorted(table)}")
                break
            if mask_dict is not None and aid not in mask_dict:
                problems.add(path, e_entry, f"unknown anno_id {aid!r}: mask_dict.json has no such entry")
                break
            if owner.setdefault(aid, vid) != vid:
                problems.add(path, e_entry, f"anno_id {aid!r} is already an object of video {owner[aid]!r}")
                break
            if obj_of.setdefault(aid, oid) != oid:
                problems.add(path, e_entry, f"anno_id {aid!r} is obj_id {obj_of[aid]} elsewhere, not {oid}")
                break
            keys.append((vid, aid))
        else:
            for k in keys:
                category = (table or {}).get(obj_of[k[1]], "object")
                plan.objects.setdefault(k, ObjectPlan(vid, obj_of[k[1]] + 1, category))
            if not keys:  # an expression refers to an object; this one names none yet
                keys = [("exp", vid, key)]
                plan.objects[keys[0]] = ObjectPlan(vid)
            plan.expressions.append(ExpressionPlan(vid, text, keys))
    too_many = limits.OBJECTS.exceeded(len(obj_of))
    if too_many:
        problems.add(path, entry, too_many)
        return
    size = None
    for aid in obj_of:
        if mask_dict is None:
            continue
        track = mask_dict[aid]
        a_entry = f"{aid!r}"
        if not isinstance(track, list) or len(track) != len(frames):
            problems.add(dict_path, a_entry, f"must be a list of {len(frames)} entries (one per frame of "
                                             f"{vid!r}), RLE or null")
            continue
        masks = {}
        for f, value in enumerate(track):
            if value is None:
                continue
            h, w = size if size else (None, None)
            mask = decode_rle(value, h, w, problems, dict_path, f"{a_entry} frame {f} ({frames[f]!r})")
            if mask is None:
                continue
            size = size or mask.shape
            counts = encode_counts(mask)
            if counts is not None:
                masks[f] = counts
        plan.objects[(vid, aid)].masks = masks
    media.size = (size[1], size[0]) if size else None
    plan.media[vid] = media
