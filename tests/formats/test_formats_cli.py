"""`launch.py import` and `launch.py export --format ...` through a real process."""
import json
import os
import subprocess
import sys

import pytest

from app import formats
from app.commands import cli
from app.project.store import ProjectStore
from tests.formats.test_formats_common import ROOT, build_project, canon

KINDS = {"coco": ("image", "video"), "refcoco": ("image",), "ytvos": ("video",), "mevis": ("video",)}


def launch(*args, home):
    env = {**os.environ, "FLOWLABEL_HOME": str(home)}  # never the user's default project
    return subprocess.run([sys.executable, "launch.py", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path):
    build_project(tmp_path / "p.sqlite", tmp_path / "media").close()
    return tmp_path / "p.sqlite"


def test_cli_names_every_format():
    assert cli.FORMAT_NAMES == tuple(formats.FORMATS)


@pytest.mark.parametrize("fmt", ["refcoco", "ytvos", "mevis"])
def test_cli_export_then_import(fmt, project, tmp_path):
    out = tmp_path / f"out-{fmt}"
    done = launch("export", "--project", project, "--format", fmt, "--out", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "warning:" in done.stdout  # what the format could not hold
    new = tmp_path / "new.sqlite"
    done = launch("import", "--project", new, "--format", fmt, out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout and "expressions" in done.stdout
    with ProjectStore(project) as a, ProjectStore(new) as b:
        assert canon(b) == canon(a, KINDS[fmt])


def test_cli_coco_polygons_export_and_import_with_media_root(project, tmp_path):
    out = tmp_path / "poly.json"
    done = launch("export", "--project", project, "--format", "coco-polygons", "--out", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "holes" in done.stdout
    assert isinstance(json.loads(out.read_text())["annotations"][0]["segmentation"], list)
    # The CLI writes the JSON only; images come from where they are: here, the original images.
    data = json.loads(out.read_text())
    data["images"] = [im for im in data["images"] if "video_id" not in im]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in {im["id"] for im in data["images"]}]
    data["refs"] = [r for r in data["refs"] if r["image_id"] in {im["id"] for im in data["images"]}]
    data["images"][1]["file_name"] = "other/still.png"
    out.write_text(json.dumps(data))
    done = launch("import", "--format", "coco", "--media-root", tmp_path / "media", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "2 media, 3 expressions" in done.stdout
    with ProjectStore(tmp_path / "home" / "default.sqlite") as store:  # --project defaults to FLOWLABEL_HOME
        assert [m["name"] for m in store.list_media()] == ["still.png", "still.png"]


def test_cli_import_reports_problems_and_skips(project, tmp_path):
    out = tmp_path / "yt"
    assert launch("export", "--project", project, "--format", "ytvos", "--out", out,
                  home=tmp_path / "home").returncode == 0
    (out / "JPEGImages" / "clip" / "00002.jpg").unlink()
    new = tmp_path / "new.sqlite"
    done = launch("import", "--project", new, "--format", "ytvos", out, home=tmp_path / "home")
    assert done.returncode == 1
    assert "JPEGImages/clip/00002.jpg" in done.stderr and "missing" in done.stderr
    assert "Traceback" not in done.stderr
    assert not new.exists()  # no empty project left behind
    # Skipped-but-harmless entries are printed with why.
    (out / "JPEGImages" / "clip" / "00002.jpg").write_bytes((out / "JPEGImages" / "clip" / "00001.jpg").read_bytes())
    (out / "Annotations" / "walk" / "00001.png").unlink()
    done = launch("import", "--project", new, "--format", "ytvos", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "skipped 1:" in done.stdout and "1 of 4 frames have no Annotations PNG" in done.stdout


def test_cli_import_of_a_missing_source(tmp_path):
    done = launch("import", "--project", tmp_path / "p.sqlite", "--format", "mevis", tmp_path / "nothing",
                  home=tmp_path / "home")
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not (tmp_path / "p.sqlite").exists()


def test_cli_export_refuses_a_foreign_folder(project, tmp_path):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    done = launch("export", "--project", project, "--format", "mevis", "--out", out, home=tmp_path / "home")
    assert done.returncode == 1 and "not an earlier FlowLabel export" in done.stderr
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("content, words", [("null", "holds only null"),
                                             ('{"videos": {}}', "holds nothing to import")])
def test_cli_import_of_nothing_fails(content, words, tmp_path):
    """A MeViS meta_expressions.json holding null (or no videos) is an error, not an empty success."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "meta_expressions.json").write_text(content)
    new = tmp_path / "new.sqlite"
    done = launch("import", "--project", new, "--format", "mevis", tmp_path / "ds", home=tmp_path / "home")
    assert done.returncode == 1
    assert words in done.stderr and "nothing was imported" in done.stderr
    assert not new.exists()
