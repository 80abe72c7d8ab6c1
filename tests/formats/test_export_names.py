"""Names in exports: every media gets a unique, safe relative file name in every export, and
the name it was added under is kept in the image's fields. Names from uploads are cleaned."""
import json
from pathlib import PurePosixPath

import pytest

from app.formats.coco_build import build_coco
from app.media.files import media_name
from tests.helpers.media_fixtures import write_image, write_video


@pytest.fixture
def clashing(studio, tmp_path):
    """Two different IMG_0001.jpg, two different clip.avi, and a name an API client sent before
    names were cleaned (recorded as such in older projects)."""
    for k in range(2):
        write_image(tmp_path / f"card{k}.png", seed=k)
        studio.add_media(tmp_path / f"card{k}.png", name="IMG_0001.jpg")
        write_video(tmp_path / f"clip{k}.avi", frames=3 + k, size=(48, 32), fps=5.0)
        studio.add_media(tmp_path / f"clip{k}.avi", name="clip.avi")
    write_image(tmp_path / "evil.png", seed=7)
    evil = studio.add_media(tmp_path / "evil.png")[0]
    studio.store.db.execute("UPDATE media SET name = ? WHERE id = ?", ["../../../../tmp/evil.png", evil["id"]])
    return studio


def test_coco_export_gives_every_media_a_unique_safe_name_and_keeps_the_original(clashing):
    data = build_coco(clashing.store)
    names = [im["file_name"] for im in data["images"]]
    assert len(set(names)) == len(names) == len(data["images"])
    for name in names:
        path = PurePosixPath(name)
        assert not path.is_absolute() and ".." not in path.parts and "\\" not in name
    original = {m["id"]: m["name"] for m in clashing.store.list_media()}
    assert all(im["original_name"] == original[im["media_id"]] for im in data["images"])
    assert sorted(original.values()).count("IMG_0001.jpg") == 2
    assert any(im["original_name"] == "../../../../tmp/evil.png" for im in data["images"])
    video_names = [v["name"] for v in data["videos"]]
    assert len(set(video_names)) == 2 and all("/" not in n for n in video_names)
    assert sorted(v["original_name"] for v in data["videos"]) == ["clip.avi", "clip.avi"]


def test_written_coco_file_holds_the_same_safe_names(clashing, tmp_path):
    out = clashing.export_coco(tmp_path / "out" / "coco.json")
    data = json.loads(out.read_text())
    assert not any(".." in im["file_name"] for im in data["images"])
    assert len({im["file_name"] for im in data["images"]}) == len(data["images"])


@pytest.mark.parametrize("given, kept", [
    ("../../../../tmp/evil.png", "evil.png"),
    ("C:\\Users\\me\\IMG_0001.jpg", "IMG_0001.jpg"),
    ("bad\nname\x00\x1b.png", "badname.png"),
    ("..", "media"),
    ("/", "media"),
    ("café ☕.jpg", "café ☕.jpg"),
])
def test_upload_names_keep_only_the_last_part_without_control_characters(given, kept):
    assert media_name(given) == kept


def test_studio_add_media_records_the_cleaned_name(studio, tmp_path):
    write_image(tmp_path / "a.png")
    row = studio.add_media(tmp_path / "a.png", name="../../etc/\x07passwd.png")[0]
    assert row["name"] == "passwd.png" == studio.store.get_media(row["id"])["name"]
