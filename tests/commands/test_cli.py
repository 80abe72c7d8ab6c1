import subprocess
import sys
from pathlib import Path

from app.commands import cli
from app.studio.studio import Studio

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_the_options():
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for flag in ("--project", "--host", "--port", "--device", "--flowrvs-wan-dir", "--flowrvs-checkpoint",
                 "--flowrvs-vae", "--flowseg-dir", "export"):
        assert flag in out
    assert "127.0.0.1" in out


def test_default_project_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWLABEL_HOME", str(tmp_path / "home"))
    assert cli.default_project() == tmp_path / "home" / "default.sqlite"
    monkeypatch.delenv("FLOWLABEL_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cli.default_project() == tmp_path / "xdg" / "flowlabel" / "default.sqlite"


def test_model_paths_come_from_flags_or_environment(monkeypatch):
    monkeypatch.setenv("FLOWLABEL_FLOWSEG_DIR", "/models/flowseg")
    args = cli.parser().parse_args(["--flowrvs-wan-dir", "/models/wan"])
    assert cli.engine_paths(args) == {"flowrvs": {"wan_dir": "/models/wan"}, "flowseg": {"model_dir": "/models/flowseg"}}


def test_new_project_opens_on_the_demo_media(tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    cli.seed_demo(studio)
    media = studio.store.list_media()
    assert [(m["name"], m["kind"]) for m in media] == [("shapes.mp4", "video"), ("shapes.png", "image")]
    assert media[0]["frames"] == 24 and len(studio.store.list_expressions()) == 5
    cli.seed_demo(studio)  # never twice, never into a project that has media
    assert len(studio.store.list_media()) == 2
    studio.close()


def test_every_engine_path_is_a_flag_and_reaches_its_engine(monkeypatch):
    """One table per engine (engine.ModelPath): the CLI's flags, the variables the engines read
    and the keywords the factories take cannot drift apart."""
    import importlib
    import inspect

    import engine
    from engine import models
    options = engine.model_path_options()
    assert {e for e, _, _ in options} >= {"flowrvs", "flowseg", "sam2", "sam3"}
    assert {(w.engine, w.setting) for w in models.CATALOG} <= {(e, k) for e, k, _ in options}
    for eng, key, where in options:
        monkeypatch.delenv(where.env, raising=False)
        args = cli.parser().parse_args([where.flag, f"/models/{eng}/{key}"])
        assert cli.engine_paths(args) == {eng: {key: f"/models/{eng}/{key}"}}
        factory = engine.engine_info(eng).factory if eng in engine.available_segmenters() else \
            importlib.import_module(f"engine.{eng}").load      # sam2: a correction engine, no segmenter
        assert key in inspect.signature(factory).parameters
        monkeypatch.setenv(where.env, "/from/env")
        assert where.value(None) == "/from/env" and where.value("/given") == "/given"
        monkeypatch.delenv(where.env)
