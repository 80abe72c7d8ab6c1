"""Shared by the format tests: a small project with every case, and a canonical view of a project.

No tests here. The project: two videos and two images (both named still.png), objects with
and without masks, masks with holes, multi-object expressions, several objects per video,
no two objects of one video sharing a pixel (so palette PNGs hold them exactly).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from app.project.store import ProjectStore
from engine import rle
from tests.helpers.media_fixtures import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]


def box(h, w, y0, y1, x0, x1, hole=None) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    if hole:
        hy0, hy1, hx0, hx1 = hole
        mask[hy0:hy1, hx0:hx1] = False
    return mask


def build_project(path: Path, media_dir: Path) -> ProjectStore:
    media_dir.mkdir(parents=True, exist_ok=True)
    write_video(media_dir / "clip.avi", frames=6, size=(48, 32))
    write_video(media_dir / "walk.mp4", frames=4, size=(40, 24))
    write_image(media_dir / "still.png", size=(40, 30), seed=1)
    (media_dir / "other").mkdir(exist_ok=True)
    write_image(media_dir / "other" / "still.png", size=(36, 20), seed=2)
    store = ProjectStore(path)
    clip = store.add_media(media_dir / "clip.avi")["id"]
    walk = store.add_media(media_dir / "walk.mp4")["id"]
    still = store.add_media(media_dir / "still.png")["id"]
    other = store.add_media(media_dir / "other" / "still.png")["id"]

    # clip: a moving square with a hole, drawn on every frame.
    e = store.add_expression(clip, "the square moving right", category="square")["id"]
    store.save_masks(e, {f: box(32, 48, 4, 16, 2 + 3 * f, 14 + 3 * f, hole=(8, 11, 6 + 3 * f, 9 + 3 * f))
                         for f in range(6)})
    # clip: two dots, one expression, several objects; the second has masks on some frames only.
    e = store.add_expression(clip, "both dots at the bottom", category="dot")["id"]
    second = store.add_object(e, category="dot")
    store.save_masks(e, {0: box(32, 48, 24, 28, 2, 6), 5: box(32, 48, 25, 29, 3, 7)})
    store.save_masks(e, {2: box(32, 48, 26, 30, 40, 46)}, object_id=second, source="demo-engine")
    # clip: an expression nobody has drawn yet.
    store.add_expression(clip, "the shadow, not drawn yet")
    # walk: one expression, a one-pixel mask and a mask touching the frame's edges.
    e = store.add_expression(walk, "a speck, then the whole frame")["id"]
    store.save_masks(e, {0: box(24, 40, 10, 11, 20, 21), 3: box(24, 40, 0, 24, 0, 40)})
    # the images: a ring (a mask with a hole), and a two-object expression.
    e = store.add_expression(still, "the ring", category="ring")["id"]
    store.save_mask(e, 0, box(30, 40, 5, 25, 5, 30, hole=(10, 20, 10, 25)))
    e = store.add_expression(still, "the two corners")["id"]
    second = store.add_object(e)
    store.save_mask(e, 0, box(30, 40, 0, 3, 0, 3))
    store.save_mask(e, 0, box(30, 40, 27, 30, 37, 40), object_id=second)
    e = store.add_expression(other, "Le café, à gauche")["id"]
    store.set_status(e, "done")
    store.save_mask(e, 0, box(20, 36, 2, 18, 1, 12))
    return store


@pytest.fixture
def source(tmp_path):
    store = build_project(tmp_path / "source.sqlite", tmp_path / "media")
    yield store
    store.close()


@pytest.fixture
def fresh(tmp_path):
    """An empty project to import into."""
    stores = []

    def make(name="imported"):
        stores.append(ProjectStore(tmp_path / f"{name}.sqlite"))
        return stores[-1]
    yield make
    for s in stores:
        s.close()


def canon(store: ProjectStore, kinds=("image", "video")) -> list:
    """The project as data that does not depend on ids or names: per media (in order), its
    expressions (in order) with text and, per linked object, its category, its decoded masks
    and which of the media's expressions share it."""
    links: dict[int, list[int]] = {}
    for link in store.expression_objects():
        links.setdefault(link["expression_id"], []).append(link["object_id"])
    masks: dict[int, dict[int, bytes]] = {}
    for row in store.iter_masks():
        mask = rle.decode({"size": [row["height"], row["width"]], "counts": row["counts"]})
        masks.setdefault(row["object_id"], {})[row["frame"]] = np.packbits(mask).tobytes() + bytes(mask.shape)
    objects = {o["id"]: o for o in store.all_objects()}
    out = []
    for m in store.list_media():
        if m["kind"] not in kinds:
            continue
        exprs = store.list_expressions(m["id"])
        refs: dict[int, list[int]] = {}
        for i, e in enumerate(exprs):
            for o in links.get(e["id"], []):
                refs.setdefault(o, []).append(i)

        def fingerprint(o, refs=refs):
            return (objects[o]["category"], tuple(sorted(masks.get(o, {}).items())), tuple(refs[o]))
        out.append((m["kind"], m["width"], m["height"], m["frames"],
                    [(e["text"], sorted(fingerprint(o) for o in links.get(e["id"], []))) for e in exprs]))
    return out


def state(store: ProjectStore, media_dir: Path | None = None) -> dict:
    """Everything an import could change."""
    files = sorted(p.name for p in store.media_dir.iterdir()) if store.media_dir.exists() else []
    return {"media": store.list_media(), "expressions": store.list_expressions(),
            "objects": store.all_objects(), "links": store.expression_objects(),
            "masks": list(store.iter_masks()), "files": files}


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle as Python 2 writes one: str as byte strings (opcode U/T)."""
    out = bytearray(b"\x80\x02")

    def w(o):
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, float):
            out.extend(b"G" + struct.pack(">d", o))
        elif isinstance(o, (str, bytes)):
            b = o.encode("utf-8") if isinstance(o, str) else o
            out.extend((b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b)
        elif isinstance(o, list):
            out.extend(b"](")
            for x in o:
                w(x)
            out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                w(k)
                w(v)
            out.extend(b"u")
        else:
            raise TypeError(type(o))
    w(obj)
    out.extend(b".")
    return bytes(out)


def load(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def dump(data, path: Path) -> None:
    Path(path).write_text(json.dumps(data), encoding="utf-8")
