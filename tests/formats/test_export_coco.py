"""COCO export: written, then read back with pycocotools and compared with the store bit for bit."""
import json
import os
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from app.formats import coco_build
from app.formats.coco_build import write_coco
from app.project.store import ProjectStore
from tests.helpers.media_fixtures import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]


# --- masks -------------------------------------------------------------------------------

def blobs(rng, h, w):
    """Several discs and boxes (some cut by the frame's edge) with holes punched in them."""
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.integers(-h // 4, h + h // 4), rng.integers(-w // 4, w + w // 4)
        r = rng.integers(2, max(3, min(h, w) // 3))
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        mask[y0:y0 + rng.integers(1, h // 2), x0:x0 + rng.integers(1, w // 2)] = True
    for _ in range(rng.integers(1, 4)):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        mask[y0:y0 + rng.integers(1, 5), x0:x0 + rng.integers(1, 5)] = False
    mask[rng.random((h, w)) < 0.01] = True  # specks: many short runs
    return mask


def pixel(h, w, y, x):
    mask = np.zeros((h, w), bool)
    mask[y, x] = True
    return mask


def ring(h, w, width=3):
    """Touches all four borders, one big hole."""
    mask = np.ones((h, w), bool)
    mask[width:h - width, width:w - width] = False
    return mask


def checkerboard(h, w):
    return (np.indices((h, w)).sum(axis=0) % 2).astype(bool)


def full(h, w):
    return np.ones((h, w), bool)


# --- the project -------------------------------------------------------------------------

@pytest.fixture
def project(store, tmp_path, video_path, image_path):
    """Two videos, two images; expressions with one to three objects; masks of every shape,
    some saved then cleared (by saving an empty mask, or by undo). Returns (store, saved), where
    saved maps (expression_id, object_id, frame) to the mask that should be stored now."""
    rng = np.random.default_rng(7)
    clip = tmp_path / "moving.mp4"
    write_video(clip, frames=12, size=(96, 64))
    photo = tmp_path / "photo.png"
    write_image(photo, size=(80, 60), seed=3)
    media = {name: store.add_media(path) for name, path in
             [("avi", video_path), ("mp4", clip), ("png", image_path), ("photo", photo)]}
    saved = {}

    def save(expr, obj, frames_masks):
        store.save_masks(expr, frames_masks, object_id=obj)
        saved.update({(expr, obj, f): m.astype(bool) for f, m in frames_masks.items()})

    def new_expression(media_row, text, extra=()):
        eid = store.add_expression(media_row["id"], text)["id"]
        objs = [store.list_objects(eid)[0]["id"]] + [store.add_object(eid, category=c) for c in extra]
        return eid, objs

    m = media["avi"]
    h, w, n = m["height"], m["width"], m["frames"]
    e, (o1, o2) = new_expression(m, "The Red square and the  person", extra=["person"])
    save(e, o1, {f: blobs(rng, h, w) for f in range(n)})
    save(e, o2, {f: blobs(rng, h, w) for f in range(0, n, 2)})
    e, (o1,) = new_expression(m, "everything")
    save(e, o1, {0: full(h, w), 1: ring(h, w), 2: pixel(h, w, 0, 0), 3: blobs(rng, h, w)})
    save(e, o1, {3: np.zeros((h, w), bool)})  # cleared by an empty save

    m = media["mp4"]
    h, w, n = m["height"], m["width"], m["frames"]
    e, (o1, o2, o3) = new_expression(m, "the yellow square", extra=["person", "dot"])
    save(e, o1, {f: blobs(rng, h, w) for f in range(n)})
    save(e, o2, {f: checkerboard(h, w) for f in (1, 5)})
    save(e, o3, {0: pixel(h, w, h - 1, w - 1), 4: pixel(h, w, h // 2, w // 2), 11: pixel(h, w, h - 1, 0)})
    save(e, o1, {5: np.zeros((h, w), bool), 6: np.zeros((h, w), bool)})

    m = media["png"]
    h, w = m["height"], m["width"]
    e, (o1,) = new_expression(m, "the noisy picture")
    save(e, o1, {0: checkerboard(h, w)})
    new_expression(m, "nothing painted yet")

    m = media["photo"]
    h, w = m["height"], m["width"]
    e, (o1, o2) = new_expression(m, "a gradient", extra=["sky"])
    save(e, o1, {0: blobs(rng, h, w)})
    store.save_mask(e, 0, blobs(rng, h, w), object_id=o2)
    store.undo(e)  # o2's only mask is gone again
    saved[e, o2, 0] = np.zeros((h, w), bool)
    e, (o1,) = new_expression(m, "all cleared")
    save(e, o1, {0: ring(h, w)})
    save(e, o1, {0: np.zeros((h, w), bool)})
    return store, saved


def export(store, tmp_path, name="coco.json"):
    path = write_coco(store, tmp_path / "out" / name)
    data = json.loads(path.read_text(encoding="utf-8"))
    return path, data, COCO(str(path))


def stored_masks(store):
    """Every (expression, object, frame) of the project with its stored mask."""
    for expr in store.list_expressions():
        frames = store.get_media(expr["media_id"])["frames"]
        for obj in store.list_objects(expr["id"]):
            for frame in range(frames):
                yield (expr["id"], obj["id"], frame), store.get_mask(expr["id"], frame, obj["id"])


def image_frames(data):
    """image id -> (media id, frame index)."""
    return {im["id"]: (im["media_id"], im.get("frame_index", 0)) for im in data["images"]}


# --- round trip --------------------------------------------------------------------------

def test_round_trip_is_exact(project, tmp_path):
    store, saved = project
    _, data, coco = export(store, tmp_path)
    frames = image_frames(data)
    media_of = {o["id"]: o["media_id"] for o in store.all_objects()}
    expression_of = {link["object_id"]: link["expression_id"] for link in store.expression_objects()}
    seen = Counter()
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == len(data["annotations"]) > 0
    for ann in anns:
        media_id, frame = frames[ann["image_id"]]
        assert media_id == media_of[ann["object_id"]]
        stored = store.get_mask(expression_of[ann["object_id"]], frame, ann["object_id"])
        decoded = coco.annToMask(ann)
        assert decoded.shape == stored.shape
        assert np.array_equal(decoded.astype(bool), stored), f"annotation {ann['id']} differs from the store"
        seen[ann["object_id"], frame] += 1

    non_empty = 0
    for (eid, oid, frame), stored in stored_masks(store):
        expected = saved.get((eid, oid, frame), np.zeros_like(stored))
        assert np.array_equal(stored, expected), "the store did not keep what was saved"
        assert seen[oid, frame] == (1 if stored.any() else 0), (eid, oid, frame)
        non_empty += bool(stored.any())
    assert sum(seen.values()) == non_empty
    cleared = [key for key, mask in saved.items() if not mask.any()]
    assert len(cleared) >= 5 and not any(seen[oid, frame] for _, oid, frame in cleared)


def test_more_than_255_masks(store, video_path, tmp_path):
    """pycocotools' batched area() sizes a uint8 array by the mask count: 256+ masks must work."""
    media = store.add_media(video_path)  # 48x32, 6 frames
    rng = np.random.default_rng(1)
    for k in range(50):
        eid = store.add_expression(media["id"], f"thing {k}")["id"]
        store.save_masks(eid, {f: blobs(rng, 32, 48) for f in range(6)})
    _, data, coco = export(store, tmp_path)
    assert len(coco.getAnnIds()) == 300
    frames = image_frames(data)
    expression_of = {link["object_id"]: link["expression_id"] for link in store.expression_objects()}
    for ann in data["annotations"][::37]:
        stored = store.get_mask(expression_of[ann["object_id"]], frames[ann["image_id"]][1], ann["object_id"])
        assert np.array_equal(coco.annToMask(ann).astype(bool), stored)
        assert ann["area"] == int(stored.sum())


def test_one_pixel_full_frame_and_empty_masks_by_hand(store, image_path, tmp_path):
    media = store.add_media(image_path)  # 40x30
    h, w = media["height"], media["width"]
    corner = store.add_expression(media["id"], "corner")["id"]
    store.save_mask(corner, 0, pixel(h, w, h - 1, w - 1))
    whole = store.add_expression(media["id"], "whole")["id"]
    store.save_mask(whole, 0, full(h, w))
    empty = store.add_expression(media["id"], "empty")["id"]
    store.save_mask(empty, 0, np.zeros((h, w), bool))
    _, data, coco = export(store, tmp_path)
    by_ref = {r["expression_id"]: r for r in data["refs"]}
    anns = {a["id"]: a for a in data["annotations"]}
    assert len(anns) == 2 and by_ref[empty]["ann_ids"] == [] and by_ref[empty]["ann_id"] is None
    one = anns[by_ref[corner]["ann_id"]]
    assert (one["area"], one["bbox"]) == (1, [39.0, 29.0, 1.0, 1.0])
    assert coco.annToMask(one)[29, 39] == 1 and coco.annToMask(one).sum() == 1
    everything = anns[by_ref[whole]["ann_id"]]
    assert (everything["area"], everything["bbox"]) == (1200, [0.0, 0.0, 40.0, 30.0])
    assert coco.annToMask(everything).all()


# --- structure ---------------------------------------------------------------------------

def test_images_one_per_media_frame(project, tmp_path):
    store, _ = project
    _, data, _ = export(store, tmp_path)
    media = store.list_media()
    assert len(data["images"]) == sum(m["frames"] for m in media)
    assert len({im["id"] for im in data["images"]}) == len(data["images"])
    for m in media:
        images = [im for im in data["images"] if im["media_id"] == m["id"]]
        assert {(im["width"], im["height"]) for im in images} == {(m["width"], m["height"])}
        if m["kind"] == "video":
            assert [im["frame_index"] for im in sorted(images, key=lambda im: im["frame_index"])] == \
                list(range(m["frames"]))
            assert {im["video_id"] for im in images} == {m["id"]}
            assert len({im["file_name"] for im in images}) == m["frames"]
        else:
            assert len(images) == 1 and "video_id" not in images[0]
    videos = {v["id"]: v for v in data["videos"]}
    assert set(videos) == {m["id"] for m in media if m["kind"] == "video"}
    assert all(videos[m["id"]]["length"] == m["frames"] for m in media if m["kind"] == "video")


def test_annotations_are_coco_rle_with_pycocotools_box_and_area(project, tmp_path):
    store, _ = project
    _, data, _ = export(store, tmp_path)
    images = {im["id"]: im for im in data["images"]}
    categories = {c["id"]: c["name"] for c in data["categories"]}
    assert len(categories) == len(data["categories"]) == len(set(categories.values())) == 4
    objects = {o["id"]: o for o in store.all_objects()}
    expression_of = {link["object_id"]: link["expression_id"] for link in store.expression_objects()}
    frames = image_frames(data)
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        seg = ann["segmentation"]
        assert isinstance(seg, dict) and isinstance(seg["counts"], str)
        assert seg["size"] == [image["height"], image["width"]]
        assert ann["iscrowd"] == 0
        assert categories[ann["category_id"]] == objects[ann["object_id"]]["category"]
        # Independently: encode the stored mask again and ask pycocotools.
        mask = store.get_mask(expression_of[ann["object_id"]], frames[ann["image_id"]][1], ann["object_id"])
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ann["area"] == int(mask_utils.area(rle)) == int(mask.sum())
        assert ann["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
        assert all(isinstance(v, float) for v in ann["bbox"]) and isinstance(ann["area"], int)


def test_one_ref_per_expression(project, tmp_path):
    store, _ = project
    _, data, _ = export(store, tmp_path)
    expressions = store.list_expressions()
    refs = {r["ref_id"]: r for r in data["refs"]}
    assert len(refs) == len(data["refs"]) == len(expressions)
    images = {im["id"]: im for im in data["images"]}
    categories = {c["id"] for c in data["categories"]}
    ann_ids_of_object = {}
    for ann in data["annotations"]:
        ann_ids_of_object.setdefault(ann["object_id"], []).append(ann["id"])
    empty_refs = 0
    for expr in expressions:
        ref = next(r for r in data["refs"] if r["expression_id"] == expr["id"])
        assert ref["sentences"][0]["raw"] == expr["text"]
        assert len(ref["sentences"]) == len(ref["sent_ids"]) == 1
        objects = [o["id"] for o in store.list_objects(expr["id"])]
        expected = [a for o in objects for a in ann_ids_of_object.get(o, [])]
        assert sorted(ref["ann_ids"]) == sorted(expected) and len(set(ref["ann_ids"])) == len(expected)
        if expected:
            assert ref["ann_id"] in ref["ann_ids"]
        else:
            assert ref["ann_id"] is None
            empty_refs += 1
        assert images[ref["image_id"]]["media_id"] == expr["media_id"]
        assert ref["category_id"] in categories
    assert empty_refs == 2  # "nothing painted yet" and "all cleared"
    assert refs[expressions[0]["id"]]["sentences"][0]["raw"] == "The Red square and the person"


# --- the file ----------------------------------------------------------------------------

def strict_json(text):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_file_is_plain_json_and_loads_in_coco(project, tmp_path):
    store, _ = project
    path, data, coco = export(store, tmp_path)
    assert strict_json(path.read_text(encoding="utf-8")) == data
    assert len(coco.getImgIds()) == len(data["images"]) and len(coco.getCatIds()) == len(data["categories"])


def test_empty_project_exports_and_loads(tmp_path):
    with ProjectStore(tmp_path / "empty.sqlite") as store:
        path, data, coco = export(store, tmp_path)
    strict_json(path.read_text(encoding="utf-8"))
    assert data["annotations"] == data["images"] == data["refs"] == data["categories"] == []
    assert coco.getAnnIds() == [] and coco.getImgIds() == []


def test_media_without_expressions_exports_images_only(store, video_path, tmp_path):
    store.add_media(video_path)
    _, data, coco = export(store, tmp_path)
    assert len(data["images"]) == 6 and data["annotations"] == data["refs"] == []
    assert len(coco.getImgIds()) == 6


def test_failed_write_keeps_old_file_and_leaves_nothing(store, image_path, tmp_path, monkeypatch):
    store.add_expression(store.add_media(image_path)["id"], "a thing")
    out = tmp_path / "out.json"
    out.write_text("old export")

    def crash(data, f, **kwargs):
        f.write('{"images": [')
        raise OSError("disk full")
    monkeypatch.setattr(coco_build.json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        write_coco(store, out)
    assert out.read_text() == "old export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.json"]


# --- command line ------------------------------------------------------------------------

def launch(*args, home):
    env = {**os.environ, "FLOWLABEL_HOME": str(home)}  # never the user's default project
    return subprocess.run([sys.executable, "launch.py", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def small_project(tmp_path, image_path):
    path = tmp_path / "cli.sqlite"
    with ProjectStore(path) as store:
        media = store.add_media(image_path)
        eid = store.add_expression(media["id"], "the top rows")["id"]
        mask = np.zeros((media["height"], media["width"]), bool)
        mask[:5] = True
        store.save_mask(eid, 0, mask)
    return path


def test_cli_export_writes_coco(small_project, tmp_path):
    out = tmp_path / "export" / "coco.json"
    done = launch("export", "--project", small_project, "--format", "coco", "--out", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    data = strict_json(out.read_text())
    assert len(data["annotations"]) == 1 and data["annotations"][0]["area"] == 5 * 40
    assert COCO(str(out)).annToMask(data["annotations"][0])[:5].all()


def test_cli_missing_project_says_what_to_do(tmp_path):
    missing, out = tmp_path / "nope.sqlite", tmp_path / "coco.json"
    done = launch("export", "--project", missing, "--out", out, home=tmp_path / "home")
    assert done.returncode != 0
    assert str(missing) in done.stderr and "--project" in done.stderr
    assert "Traceback" not in done.stderr
    assert not missing.exists() and not out.exists()  # no empty project created on the way


def test_cli_replaces_existing_output_atomically(small_project, tmp_path):
    out = tmp_path / "coco.json"
    out.write_text("an old export")
    old_inode = out.stat().st_ino
    done = launch("export", "--project", small_project, "--out", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert len(strict_json(out.read_text())["annotations"]) == 1
    # A new file renamed over the old one: readers saw either the old or the new file, whole.
    assert out.stat().st_ino != old_inode
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_cli_project_before_subcommand(small_project, tmp_path):
    out = tmp_path / "coco.json"
    done = launch("--project", small_project, "export", "--out", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert out.exists()


def test_export_file_gets_ordinary_permissions(store, tmp_path):
    old = os.umask(0o022)
    try:
        out = write_coco(store, tmp_path / "perm.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
