"""A dataset's byte-identical items (the same photo under two names, clips whose frames happen to
match) stay separate media under their own names; they share one file on disk, and the import
summary says how many there were."""
import json

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from sqlite_utils import Database

from app import formats
from app.project.schema import migrations
from app.project.store import ProjectStore
from tests.formats.test_formats_common import fresh  # noqa: F401 (fixture)
from tests.helpers.media_fixtures import write_video


def rle(h, w, y0, y1, x0, x1) -> dict:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    encoded = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": encoded["counts"].decode()}


def test_the_same_photo_under_two_names_stays_two_media(fresh, tmp_path):
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    photo = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
    for name in ("IMG_0001.png", "copy_of_IMG_0001.png"):
        cv2.imwrite(str(root / "images" / name), photo)
    (root / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "IMG_0001.png", "width": 30, "height": 20},
                   {"id": 2, "file_name": "copy_of_IMG_0001.png", "width": 30, "height": 20}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rle(20, 30, 2, 8, 3, 9)},
                        {"id": 2, "image_id": 2, "category_id": 1, "iscrowd": 0,
                         "segmentation": rle(20, 30, 10, 18, 12, 28)}],
        "categories": [{"id": 1, "name": "cat"}]}))
    target = fresh()
    report = formats.import_coco(target, root / "coco.json")
    media = target.list_media()
    assert sorted(m["name"] for m in media) == ["IMG_0001.png", "copy_of_IMG_0001.png"]
    assert report.read["media"] == 2 and len({m["id"] for m in media}) == 2
    assert "1 item(s) were byte-identical to an earlier item" in report.summary()
    assert len({m["path"] for m in media}) == 1 and len(list(target.media_dir.iterdir())) == 1
    masks = {m["name"]: target.get_mask(target.list_expressions(m["id"])[0]["id"], 0) for m in media}
    assert masks["IMG_0001.png"][2:8, 3:9].all() and masks["IMG_0001.png"].sum() == 36
    assert masks["copy_of_IMG_0001.png"][10:18, 12:28].all() and masks["copy_of_IMG_0001.png"].sum() == 128
    assert [o["label"] for m in media for o in target.list_objects(target.list_expressions(m["id"])[0]["id"])] == [1, 1]
    exported = formats.export_coco(target, tmp_path / "out.json")
    assert exported.written["images"] == 2


def test_identical_clips_of_a_mevis_dataset_stay_separate_videos(fresh, tmp_path):
    source = fresh("source")
    write_video(tmp_path / "clip.avi", frames=4, size=(48, 32), fps=5.0)
    first = source.add_media(tmp_path / "clip.avi", name="walk.avi")
    second = source.add_media(tmp_path / "clip.avi", name="run.avi", own=True)
    assert second["id"] != first["id"] and not second["copied"]
    for media, words in ((first, "the walker"), (second, "the runner")):
        expr = source.add_expression(media["id"], words)
        mask = np.zeros((32, 48), bool)
        mask[4:20, 4 + 10 * (media is second):20 + 10 * (media is second)] = True
        source.save_masks(expr["id"], {f: mask for f in range(4)})
    formats.export_mevis(source, tmp_path / "mevis")
    target = fresh()
    report = formats.import_mevis(target, tmp_path / "mevis")
    media = target.list_media()
    assert len(media) == 2 and report.read["media"] == 2
    assert "1 item(s) were byte-identical" in report.summary()
    texts = sorted(e["text"] for e in target.list_expressions())
    assert texts == ["the runner", "the walker"]
    assert sorted(len(target.list_expressions(m["id"])) for m in media) == [1, 1]


def test_removing_one_of_two_media_that_share_a_file_keeps_the_file(store, video_path):
    first = store.add_media(video_path)
    second = store.add_media(video_path, name="again.avi", own=True)
    store.remove_media(second["id"])
    assert store.media_file(first["id"]).read_bytes() == video_path.read_bytes()
    store.remove_media(first["id"])
    assert not (store.media_dir / first["path"]).exists()


def test_a_project_from_before_keeps_its_media_and_may_then_share_bytes(tmp_path, video_path):
    path = tmp_path / "old.sqlite"
    db = Database(path)
    migrations.apply(db, stop_before="m007_media_may_share_bytes")  # the schema as it was
    db["media"].insert({"id": 1, "kind": "video", "name": "clip.avi", "path": "x.avi", "sha256": "ab" * 32,
                        "width": 48, "height": 32, "frames": 6, "fps": 5.0, "created_at": "2026-01-01"})
    db["expressions"].insert({"id": 1, "media_id": 1, "text": "the red square", "created_at": "2026-01-01",
                              "updated_at": "2026-01-01"})
    db["objects"].insert({"id": 1, "media_id": 1, "label": 1, "created_at": "2026-01-01"})
    db["expression_objects"].insert({"expression_id": 1, "object_id": 1})
    db.close()
    reader = ProjectStore(path, readonly=True)  # reads a migrated copy; the file stays as it was
    try:
        assert reader.get_expression(1)["text"] == "the red square"
    finally:
        reader.close()
    store = ProjectStore(path)
    try:
        assert store.integrity_check() == "ok"
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.get_media(1)["sha256"] == "ab" * 32
        assert store.get_expression(1)["text"] == "the red square"
        assert [o["id"] for o in store.list_objects(1)] == [1]
        added = store.add_media(video_path)
        assert store.add_media(video_path, own=True)["id"] not in (1, added["id"])
    finally:
        store.close()
