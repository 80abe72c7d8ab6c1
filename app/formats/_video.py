"""What the two video layouts share (Ref-YouTube-VOS/Ref-DAVIS17 and MeViS).

Both have meta_expressions.json = {"videos": {vid: {"expressions": {"0": {...}}, "frames":
[names]}}} and JPEGImages/<vid>/<frame>.jpg. FlowLabel adds two keys per video that readers
of the original datasets ignore: "fps" and "objects" ({id: {"category": ...}}), so that an
export imports back with its frame rate, categories, and objects that have no mask yet.
"""
from __future__ import annotations

from pathlib import Path

from app.formats import _frames
from app.formats._base import (
    ExportReport,
    FormatError,
    Problems,
    Snapshot,
    as_int,
    clean_text,
    read_json,
    safe_name,
)
from app.media import limits
from app.project.store import ProjectStore


def video_media(snap: Snapshot, report: ExportReport, fmt: str) -> list[dict]:
    images = [m for m in snap.media if m["kind"] != "video"]
    if images:
        report.warnings.append(f"{len(images)} image media skipped: {fmt} holds videos only "
                               "(export them as coco or refcoco)")
    return [m for m in snap.media if m["kind"] == "video"]


def write_frames(store: ProjectStore, media: dict, folder: Path, vid: str, quality: int) -> list[str]:
    return _frames.write_video_frames(store.media_dir / media["path"], media["frames"],
                                      folder / "JPEGImages" / vid, quality)


def video_entry(snap: Snapshot, media: dict, frames: list[str], expressions: dict, id_of) -> dict:
    objects = {str(id_of(o)): {"category": o["category"]} for o in snap.objects_of_media(media["id"])}
    entry = {"expressions": expressions, "frames": frames, "objects": objects,
             "original_name": media["name"]}  # the key is the safe, unique folder name
    if media["fps"]:
        entry["fps"] = media["fps"]
    return entry


def meta_path(src: Path) -> Path:
    src = Path(src)
    if src.is_dir():
        return src / "meta_expressions.json"
    return src


def read_videos(path: Path, problems: Problems) -> dict:
    """meta_expressions.json -> {vid: entry}; structure checked, problems collected."""
    meta = read_json(path, problems)
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        problems.add(path, "", 'must be a JSON object {"videos": {video id: {...}}}')
        return {}
    videos = {}
    for vid, video in meta["videos"].items():
        entry = f"videos[{vid!r}]"
        if safe_name(vid, problems, path, entry, "video id") is None:
            continue
        if not isinstance(video, dict):
            problems.add(path, entry, "must be an object with expressions and frames")
            continue
        frames = video.get("frames")
        if not isinstance(frames, list) or not frames:
            problems.add(path, entry, "frames must be a non-empty list of frame names")
            continue
        if not all(safe_name(f, problems, path, f"{entry} frames", "frame name") for f in frames):
            continue
        if len(set(frames)) != len(frames):
            problems.add(path, entry, "frames lists a frame twice")
            continue
        too_many = limits.FRAMES.exceeded(len(frames))
        if too_many:
            problems.add(path, entry, too_many)
            continue
        if not isinstance(video.get("expressions", {}), dict):
            problems.add(path, entry, "expressions must be an object {\"0\": {\"exp\": ...}, ...}")
            continue
        videos[vid] = video
    return videos


def fps_of(video: dict, fps: float | None) -> float | None:
    value = video.get("fps")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return fps


def objects_table(video: dict, problems: Problems, path: Path, entry: str, low: int, high: int | None):
    """FlowLabel's "objects" key: {id: {"category": str}} -> {id: category}; None when absent."""
    table = video.get("objects")
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.add(path, f"{entry} objects", "must be an object {id: {\"category\": ...}}")
        return {}
    out = {}
    for key, value in table.items():
        oid = as_int(key, problems, path, f"{entry} objects", "object id", low, high)
        category = value.get("category", "object") if isinstance(value, dict) else None
        category = clean_text(category, problems, path, f"{entry} objects[{key!r}]", "category")
        if oid is not None and category is not None:
            out[oid] = category or "object"
    return out


def expression_text(exp, problems: Problems, path: Path, entry: str, skipped: list) -> str | None:
    if not isinstance(exp, dict):
        problems.add(path, entry, "an expression must be an object with \"exp\"")
        return None
    text = clean_text(exp.get("exp"), problems, path, entry, "exp")
    if text == "":
        skipped.append((f"{problems.name(path)}: {entry}", "empty expression text"))
        return None
    return text


def too_many_labels(snap: Snapshot, videos: list[dict], limit: int, fmt: str) -> None:
    over = [m["name"] for m in videos if any(o["label"] > limit for o in snap.objects_of_media(m["id"]))]
    if over:
        raise FormatError(f"{fmt} palette PNGs hold object ids 1..{limit}; these videos have more objects: "
                          f"{', '.join(over[:10])}; export them as mevis or coco (nothing was written)")
