"""One writer per project: the studio and the CLI's writing commands hold `<project>.lock`;
a second writer is refused with the holder's pid and command; readers still read; the lock
dies with its process (kill -9 included) and saved work stays."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file

from app.project_lock import ProjectLock, ProjectLockedError, holder, lock_path
from app.store import ProjectStore
from bench.live_app import ROOT, LiveApp, free_port
from tests.test_formats_common import build_project


def launch(*args, home, timeout=120):
    env = {**os.environ, "FLOWLABEL_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, "launch.py", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_second_lock_is_refused_with_the_holders_name_until_released(tmp_path):
    project = tmp_path / "p.sqlite"
    first = ProjectLock(project, "studio").acquire()
    # flock conflicts between two open files even inside one process, as between two processes
    with pytest.raises(ProjectLockedError, match=rf"open for writing by pid {os.getpid()} on .*\(studio: "):
        ProjectLock(project, "import").acquire()
    assert holder(project)["pid"] == os.getpid() and lock_path(project).name == "p.sqlite.lock"
    first.release()
    with ProjectLock(project, "import"):
        assert holder(project)["command"].startswith("import: ")
    with ProjectLock(project, "annotate"):  # released by the with block
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    project = tmp_path / "p.sqlite"
    code = (f"from app.project_lock import ProjectLock; import os, signal; ProjectLock({str(project)!r}, 'x')"
            ".acquire(); print('locked', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout == "locked\n" and done.returncode == -9
    with ProjectLock(project, "next"):  # nothing stale is left to clear by hand
        pass


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    build_project(tmp_path / "p.sqlite", tmp_path / "media").close()
    app = LiveApp(tmp_path / "p.sqlite")
    yield app
    app.stop()


def test_studio_and_cli_writers_are_refused_while_a_studio_runs(studio, tmp_path):
    home = tmp_path / "home"
    project = studio.project
    # A mask saved through the running studio, before anything else happens.
    client = Client(studio.url, verbose=False)
    expression = client.predict(1, "saved before the crash", api_name="/add_expression")["expression_id"]
    mask = np.zeros((32, 48), np.uint8)
    mask[5:20, 7:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    client.predict(expression, 2, handle_file(tmp_path / "m.png"), api_name="/save_mask")

    who = rf"open for writing by pid {studio.proc.pid} on .*\(studio: .*launch.py --project {project}"
    second = launch("--project", project, "--port", free_port(), "--no-demo", home=home)
    assert second.returncode == 3 and re.search(who, second.stderr), second.stderr
    assert "Serving" not in second.stdout  # it never started serving

    # Readers read beside the writer.
    dataset = tmp_path / "x-mevis"
    done = launch("export", "--project", project, "--format", "mevis", "--out", dataset, home=home)
    assert done.returncode == 0, done.stderr
    exported = json.loads((dataset / "meta_expressions.json").read_text())
    assert "saved before the crash" in json.dumps(exported)

    with ProjectStore(project) as store:
        before = len(store.list_expressions())
    for command in (["import", "--project", project, "--format", "mevis", dataset],
                    ["annotate", "--project", project, "--engine", "fake-bright", "--engine-module",
                     "tests.fake_engines"]):
        done = launch(*command, home=home)
        assert done.returncode == 3 and re.search(who, done.stderr), (command, done.stderr)
        assert "Traceback" not in done.stderr
    with ProjectStore(project) as store:
        assert len(store.list_expressions()) == before  # the refused import added nothing

    studio.kill9()  # the lock goes with the process
    done = launch("import", "--project", project, "--format", "mevis", dataset, home=home)
    assert done.returncode == 0, done.stderr
    with ProjectStore(project) as store:
        assert np.array_equal(store.get_mask(expression, 2), mask > 0)
        assert len(store.list_expressions()) > before



def test_an_unwritable_project_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "p.sqlite.lock").mkdir()  # a lock path that cannot be opened as a file, even by root
    with pytest.raises(ProjectLockedError, match=r"cannot open the lock file .*p\.sqlite\.lock .*writable"):
        ProjectLock(folder / "p.sqlite", "studio").acquire()
