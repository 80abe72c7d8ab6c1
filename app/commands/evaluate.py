"""Score an engine against the project's corrected masks, without writing to the project.

`launch.py evaluate --project P --engine E` runs E on every annotated expression and reports
DAVIS J&F for videos and cIoU/gIoU for images (engine.metrics), per expression and overall,
as a table and a JSON file. Read-only: each expression goes through Studio.propose, the run
that Segment makes, and nothing is saved (no masks, no proposals, no revisions).

Ground truth. An expression's ground truth is the union of its objects' masks per frame, on:
1. every frame, when its status is done or reviewed (a person vouched for the whole
   expression; a frame without a mask is one where the object is absent);
2. every frame, when all of its masks came from an imported dataset (source "import"): the
   dataset is the ground truth, and its frames without a mask are absent-object frames;
3. otherwise only the frames a person drew or a dataset gave (source "manual" or "import");
   frames holding an engine's or propagation's masks are not ground truth, and frames without
   a mask are not scored (nobody said the object is absent there).
Expressions with none of these are skipped and listed. The engine always sees the whole video;
only the ground-truth frames are scored.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

import engine
from app.commands.console import progress_bar
from app.errors import UserError
from app.media import files as media_io
from app.project.store import FINISHED, ProjectStore
from app.studio.studio import Studio
from engine import metrics

HUMAN_SOURCES = ("manual", "import")
RULE = ("ground truth: every frame of expressions marked done/reviewed or whose masks all come from an "
        "imported dataset; otherwise only frames with manual or imported masks")


class EvaluationError(UserError):
    """Nothing to evaluate, or the engine cannot run on the project; the message says why."""


@dataclass
class Target:
    expression: dict
    media: dict
    frames: list[int]      # the frames holding ground truth
    basis: str             # "finished", "dataset" or "human frames"


def _frame_sources(store: ProjectStore, expression_id: int) -> dict[int, set[str]]:
    sources: dict[int, set[str]] = {}
    for obj in store.list_objects(expression_id):
        for frame, source in store.mask_sources(expression_id, obj["id"]).items():
            sources.setdefault(frame, set()).add(source)
    return sources


def ground_truth_frames(store: ProjectStore, expression: dict, media: dict) -> Optional[Target]:
    """Which frames of `expression` are ground truth (see the module docstring); None if none."""
    sources = _frame_sources(store, expression["id"])
    everything = list(range(media["frames"]))
    if expression["status"] in FINISHED:
        return Target(expression, media, everything, "finished")
    used = set().union(*sources.values()) if sources else set()
    if used == {"import"}:
        return Target(expression, media, everything, "dataset")
    human = [f for f, s in sorted(sources.items()) if s <= set(HUMAN_SOURCES)]
    return Target(expression, media, human, "human frames") if human else None


def ground_truth(store: ProjectStore, target: Target) -> np.ndarray:
    """bool [len(target.frames), H, W]: the union of the expression's objects' masks."""
    eid = target.expression["id"]
    objects = [o["id"] for o in store.list_objects(eid)]
    gt = np.zeros((len(target.frames), target.media["height"], target.media["width"]), bool)
    for obj in objects:
        stored = store.mask_sources(eid, obj)
        for i, frame in enumerate(target.frames):
            if frame in stored:
                gt[i] |= store.get_mask(eid, frame, obj)
    return gt


def select(store: ProjectStore, engine_name: str) -> tuple[list[Target], list[dict]]:
    """The expressions to score (ordered by media, so each media is decoded once) and the
    skipped ones with the reason."""
    info = engine.engine_info(engine_name)  # UnknownEngineError names the registered ones
    media = {m["id"]: m for m in store.list_media()}
    targets, skipped = [], []
    for expr in store.list_expressions():
        m = media[expr["media_id"]]
        target = ground_truth_frames(store, expr, m)
        if target is None:
            skipped.append({"id": expr["id"], "text": expr["text"], "media": m["name"],
                            "reason": "no ground truth (not done/reviewed, no manual or imported masks)"})
        elif m["kind"] not in info.kinds:
            skipped.append({"id": expr["id"], "text": expr["text"], "media": m["name"],
                            "reason": f"engine {engine_name} does not segment {m['kind']}s"})
        else:
            targets.append(target)
    targets.sort(key=lambda t: (t.media["id"], t.expression["id"]))
    return targets, skipped


def evaluate(studio: Studio, engine_name: str, show_progress: bool = True) -> dict:
    """Run `engine_name` on the annotated expressions of `studio`'s project and score it.
    Returns the report (the JSON written by write_json). Raises UnknownEngineError or
    EvaluationError."""
    store = studio.store
    t0 = time.perf_counter()
    targets, skipped = select(store, engine_name)
    if not targets:
        why = "; ".join(sorted({s["reason"] for s in skipped})) or "the project has no expressions"
        raise EvaluationError(
            f"nothing to evaluate in {store.path.name}: {why}. Correct some expressions and mark them "
            "done (or import a dataset with masks), then run evaluate again")
    preds = {"video": {}, "image": {}}
    gts = {"video": {}, "image": {}}
    rows = {"video": {}, "image": {}}
    by_id = {t.expression["id"]: t for t in targets}
    with progress_bar(len(targets), f"evaluate {engine_name}", show_progress) as bar:
        for t in targets:
            m, expr = t.media, t.expression
            try:
                pred = studio.propose(expr["id"], engine_name).masks
            except (engine.Cancelled, KeyboardInterrupt):
                raise
            except media_io.MediaError as e:
                raise EvaluationError(f"cannot read {m['name']} (expression {expr['id']}): {e}") from e
            except Exception as e:
                raise EvaluationError(f"{engine_name} failed on expression {expr['id']} ({expr['text']!r}, "
                                      f"{m['name']}): {type(e).__name__}: {e}") from e
            kind = m["kind"]
            preds[kind][expr["id"]] = pred[t.frames]
            gts[kind][expr["id"]] = ground_truth(store, t)
            rows[kind][expr["id"]] = {"text": expr["text"], "media": m["name"], "media_id": m["id"],
                                      "status": expr["status"], "basis": t.basis,
                                      "frames_scored": len(t.frames), "frames": m["frames"]}
            bar.update(1)
    report = {"engine": engine_name, "project": str(store.path),
              "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "ground_truth": RULE, "video": None, "image": None, "skipped": skipped}
    if rows["video"]:
        scores = metrics.jf_per_expression(preds["video"], gts["video"])
        for eid, row in rows["video"].items():
            s = scores["per_expression"][eid]
            row.update({"J": s["J"], "F": s["F"], "J&F": s["J&F"], "frame_indices": by_id[eid].frames,
                        "J_frames": s["J_frames"], "F_frames": s["F_frames"]})
        report["video"] = {"metric": f"DAVIS J&F (bound_th {metrics.BOUND_TH})",
                           "expressions": rows["video"], "overall": scores["overall"]}
    if rows["image"]:
        scores = metrics.iou_per_expression(preds["image"], gts["image"])
        for eid, row in rows["image"].items():
            row.update(scores["per_expression"][eid])
        report["image"] = {"metric": "cIoU / gIoU", "expressions": rows["image"], "overall": scores["overall"]}
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def format_table(report: dict) -> str:
    """The report as a plain-text table (per expression, then overall)."""
    lines = [f"engine {report['engine']} on {report['project']}", report["ground_truth"]]
    video, image = report["video"], report["image"]
    if video:
        lines += ["", f"videos: {video['metric']}",
                  f"{'id':>6}  {'media':<20} {'frames':>9}  {'J':>6} {'F':>6} {'J&F':>6}  expression"]
        for eid, r in video["expressions"].items():
            lines.append(f"{eid:>6}  {_clip(r['media'], 20):<20} {r['frames_scored']:>4}/{r['frames']:<4}  "
                         f"{_f(r['J']):>6} {_f(r['F']):>6} {_f(r['J&F']):>6}  {_clip(r['text'])}")
        o = video["overall"]
        lines.append(f"{'overall':>6}  {str(o['count']) + ' expressions':<20} {'':>9}  "
                     f"{_f(o['J']):>6} {_f(o['F']):>6} {_f(o['J&F']):>6}")
    if image:
        lines += ["", f"images: {image['metric']}",
                  f"{'id':>6}  {'media':<20} {'IoU':>6} {'I':>8} {'U':>8}  expression"]
        for eid, r in image["expressions"].items():
            lines.append(f"{eid:>6}  {_clip(r['media'], 20):<20} {_f(r['IoU']):>6} {r['I']:>8} {r['U']:>8}  "
                         f"{_clip(r['text'])}")
        o = image["overall"]
        lines.append(f"{'overall':>6}  {str(o['count']) + ' expressions':<20} cIoU {_f(o['cIoU'])}  "
                     f"gIoU {_f(o['gIoU'])}")
    if report["skipped"]:
        lines += ["", f"skipped {len(report['skipped'])} expression(s):"]
        lines += [f"{s['id']:>6}  {_clip(s['text'])}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines)


def default_json_path(project: Path, engine_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in engine_name)
    project = Path(project)
    return project.with_name(f"{project.stem}-eval-{safe}.json")


def write_json(report: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    partial.replace(path)
    return path
