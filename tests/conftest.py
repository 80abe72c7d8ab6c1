import cv2
import numpy as np
import pytest

from app.store import ProjectStore
from bench.canvas_driver import CHROMIUM, FLAGS


@pytest.fixture
def store(tmp_path):
    s = ProjectStore(tmp_path / "project.sqlite")
    yield s
    s.close()


@pytest.fixture
def studio(tmp_path):
    """A Studio on a new project in tmp_path."""
    from app.studio import Studio
    s = Studio(tmp_path / "p.sqlite")
    yield s
    s.close()


@pytest.fixture
def image_path(tmp_path):
    """A 40x30 RGB png with distinct pixels."""
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def video_path(tmp_path):
    """A 6-frame 48x32 MJPG avi."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (48, 32))
    for i in range(6):
        frame = np.full((32, 48, 3), 20 * i, np.uint8)
        cv2.rectangle(frame, (4 * i, 4), (4 * i + 10, 14), (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def page():
    """A Chromium page at 1600x1000 (Debian's chromium, driven by Playwright)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


@pytest.fixture
def live_app(tmp_path):
    """The real app on a free port, on an empty project in tmp_path."""
    from bench.live_app import LiveApp
    app = LiveApp(tmp_path / "live.sqlite")
    yield app
    app.stop()


# -- markers: `pytest -m "not browser and not subprocess and not bench"` is the quick loop ------
_SPAWNS = ("subprocess.", "LiveApp(", "sys.executable")


def _spawns(function, module) -> bool:
    """The test, or a module-level helper it calls, starts another process."""
    import inspect
    try:
        if any(s in inspect.getsource(function) for s in _SPAWNS):
            return True
    except (OSError, TypeError):
        return False
    for name in function.__code__.co_names:
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == module.__name__:
            try:
                if any(s in inspect.getsource(helper) for s in _SPAWNS):
                    return True
            except (OSError, TypeError):
                pass
    return False


def _fixture_spawns(item) -> bool:
    import inspect
    for defs in item._fixtureinfo.name2fixturedefs.values():
        for fixture in defs:
            try:
                if any(s in inspect.getsource(fixture.func) for s in _SPAWNS):
                    return True
            except (OSError, TypeError):
                pass
    return False


def _uses_chromium(item) -> bool:
    """The test's `page` is this file's Chromium fixture (a module may define its own `page`)."""
    defs = item._fixtureinfo.name2fixturedefs.get("page") or ()
    return bool(defs) and defs[-1].func.__module__ == __name__


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module.startswith("test_e2e_") or _uses_chromium(item):
            item.add_marker(pytest.mark.browser)
        if "bench" in module:
            item.add_marker(pytest.mark.bench)
        if _fixture_spawns(item) or _spawns(item.function, item.module):
            item.add_marker(pytest.mark.subprocess)

