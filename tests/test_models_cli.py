"""`launch.py models list` on a fake Hugging Face cache, and `models download` offline."""
import os
import shutil
import subprocess
import sys

from app.cli import main
from bench.live_app import ROOT
from tests import sam_fixtures as fx
from tests.hf_cache import write_hf_cache_entry


def listing(capsys, *flags) -> str:
    assert main([*flags, "models", "list"]) == 0
    return capsys.readouterr().out


def block(text: str, engine: str, setting: str) -> str:
    """The lines of one weights entry in the listing."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == [engine, setting])
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return "\n".join(lines[start:end])


def test_list_shows_ready_missing_and_where_it_looked(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(fx.hf_cache()))
    for env in ("FLOWLABEL_SAM_MODEL", "FLOWLABEL_FLOWRVS_WAN_DIR", "FLOWLABEL_FLOWSEG_DIR"):
        monkeypatch.delenv(env, raising=False)
    entry = fx.hf_cache() / "models--facebook--sam2.1-hiera-tiny" / "snapshots" / fx.SNAPSHOT
    out = listing(capsys)
    sam = block(out, "sam2", "model")
    assert "missing" in sam and str(entry) in sam and "pass --sam-model facebook/sam2.1-hiera-tiny" in sam
    wan = block(out, "flowrvs", "wan_dir")
    assert "models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers" in wan and "models download wan2.1-t2v-1.3b" in wan
    assert "not configured: set --flowseg-dir" in block(out, "flowseg", "model_dir")

    ready = block(listing(capsys, "--sam-model", "facebook/sam2.1-hiera-tiny"), "sam2", "model")
    assert ready.split()[2] == "ready" and str(entry) in ready and "missing:" not in ready

    half = tmp_path / "half"
    shutil.copytree(fx.model_dir(), half)
    (half / "model.safetensors").unlink()
    write_hf_cache_entry(tmp_path / "hub", "facebook/sam2.1-hiera-small", half, "abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    broken = block(listing(capsys, "--sam-model", "facebook/sam2.1-hiera-small"), "sam2", "model")
    assert broken.split()[2] == "missing" and "missing: model.safetensors" in broken
    assert "models download sam2.1-small (it resumes)" in broken


def download(name, cache, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), "models", "download", name], env=env,
                          capture_output=True, text=True, timeout=300)


def test_download_offline_says_what_is_missing_and_where_to_put_it(tmp_path):
    done = download("sam2.1-small", tmp_path / "empty-cache", tmp_path)
    assert done.returncode == 1
    assert "facebook/sam2.1-hiera-small" in done.stderr and "huggingface-cli download" in done.stderr
    assert str(tmp_path / "empty-cache") in done.stderr and "models--facebook--sam2.1-hiera-small" in done.stderr
    assert not (tmp_path / "empty-cache" / "models--facebook--sam2.1-hiera-small" / "snapshots").exists()
    unknown = download("no-such-model", tmp_path / "empty-cache", tmp_path)
    assert unknown.returncode == 1 and "known name" in unknown.stderr


def test_download_of_weights_already_cached_is_found_offline(tmp_path):
    done = download("sam2.1-tiny", fx.hf_cache(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(fx.SNAPSHOT)


def test_studio_reports_which_weights_are_ready(tmp_path, monkeypatch):
    from app.studio import Studio
    monkeypatch.setenv("HF_HUB_CACHE", str(fx.hf_cache()))
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    monkeypatch.setenv("FLOWLABEL_FLOWSEG_DIR", str(tmp_path / "nowhere"))
    studio = Studio(tmp_path / "p.sqlite", engine_paths={"sam2": {"model": fx.REPO}})
    try:
        rows = {(r["engine"], r["setting"]): r for r in studio.weights_status()}
    finally:
        studio.close()
    assert rows["sam2", "model"]["ready"] and rows["sam2", "model"]["where"][0].endswith(fx.SNAPSHOT)
    assert not rows["flowseg", "model_dir"]["ready"] and "does not exist" in rows["flowseg", "model_dir"]["hint"]
    assert not rows["flowrvs", "wan_dir"]["ready"]


def test_list_shows_the_optional_sam3_tracker(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("FLOWLABEL_SAM3_TRACKER_MODEL", raising=False)
    unset = block(listing(capsys), "sam3", "tracker")
    assert unset.split()[2] == "unset" and "--sam3-tracker-model" in unset and "facebook/sam3" in unset

    ready = block(listing(capsys, "--sam3-tracker-model", str(fx.model_dir())), "sam3", "tracker")
    assert ready.split()[2] == "ready" and str(fx.model_dir()) in ready

    empty = tmp_path / "empty"
    empty.mkdir()
    broken = block(listing(capsys, "--sam3-tracker-model", str(empty)), "sam3", "tracker")
    assert broken.split()[2] == "missing" and "missing: config.json" in broken
