"""bench/gpu.py, the lent GPU's one command, as a --dry-run on this CPU: every part runs tiny
(or is skipped with a reason), the report has its structure, the trained demo models come
back as archives that load, and what comes back fits the device's limits. Timings are not
judged. The full dry run takes a few minutes on two cores: it is the only check of the GPU
run before a GPU is lent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("flowrvs", "flowrvs-windows", "flowseg", "sam2", "train")


def run_driver(out: Path, *extra, timeout=1500) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OUT="")
    return subprocess.run([sys.executable, "bench/gpu.py", "--dry-run", "--out", str(out),
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-dry")
    done = run_driver(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text()), done.stdout


def test_every_part_ran_with_its_figures(dry_run):
    out, report, _ = dry_run
    assert report["mode"].startswith("dry run") and set(report["parts"]) == set(PARTS)
    assert report["setup"]["wheels"]["status"] == "skipped" and report["setup"]["wheels"]["reason"]
    versions = report["setup"]["versions"]
    assert versions["torch"] and versions["transformers"] and versions["cuda"] is False
    for name in PARTS:
        part = report["parts"][name]
        assert part["status"] == "ok", (name, part.get("reason"), part.get("log_tail"))
        assert part["what"]
    s = report["parts"]["flowrvs"]["summary"]
    assert s["release_fps"] > 0 and s["ours_fps"] > 0 and 0 <= s["mask_agreement"] <= 1
    w = report["parts"]["flowrvs-windows"]
    assert [p["frames"] for p in w["result"]["sweep"]] == [5, 9]
    assert w["summary"]["frames"] == 21 and isinstance(w["summary"]["within_20gb"], bool)
    assert ("window_memory" in w["summary"]) != ("fit_error" in w["summary"])
    f = report["parts"]["flowseg"]["summary"]
    assert f["latency_ms"] > 0 and f["queries"] == 8 and "bsf_bar_adds_ms" in f
    sam = report["parts"]["sam2"]["summary"]
    assert sam["test_embed_ms"] > 0 and sam["test_track_fps"] > 0
    assert sam["engine_present"] == (ROOT / "engine" / "sam2").is_dir()
    for part in PARTS[:-1]:
        assert report["parts"][part]["seconds"] <= report["parts"][part]["cap_s"] + 5


def test_trained_demo_models_come_back_as_archives_that_load(dry_run, tmp_path):
    from engine.flowrvs.pipeline import FlowRVSPipeline
    from engine.flowseg.pipeline import FlowSegPipeline
    out, report, _ = dry_run
    runs = report["parts"]["train"]["runs"]
    for name, loader in (("flowrvs-demo", FlowRVSPipeline), ("flowseg-demo", FlowSegPipeline)):
        run = runs[name]
        assert run["status"] == "ok" and run["last_step"] >= 1, run.get("log_tail")
        assert run["archive"]["file"] == f"{name}.tar.gz"
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            tar.extractall(tmp_path / name, filter="data")
        assert (tmp_path / name / "train.log").read_text()
        pipe = loader.from_pretrained(tmp_path / name / "pipeline", device="cpu")
        if name == "flowseg-demo":
            assert pipe.config.query_position is True       # the recipe's --query-position
    assert "--timestep-bias 4" in runs["flowrvs-demo"]["command"]


def test_what_comes_back_fits_the_device_limits(dry_run):
    out, report, stdout = dry_run
    files = list(out.iterdir())
    assert {f.name for f in files} >= {"report.json", "report.md", "logs.txt"}
    assert len(files) <= 8 and all(f.is_file() and f.stat().st_size < 16 * 2 ** 20 for f in files)
    md = (out / "report.md").read_text()
    for name in PARTS:
        assert f"| {name} | ok |" in md
    assert "| part | status | seconds | figures |" in stdout
    assert "===== flowseg.log" in (out / "logs.txt").read_text()


def test_no_time_left_skips_every_part_with_a_reason(tmp_path):
    done = run_driver(tmp_path, "--budget", "5", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    for name in PARTS:
        part = report["parts"][name]
        assert part["status"] == "skipped" and "no time left" in part["reason"], (name, part)


def test_unknown_parts_are_refused():
    done = subprocess.run([sys.executable, "bench/gpu.py", "--parts", "flowrvs,nope"], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "unknown parts ['nope']" in done.stderr
