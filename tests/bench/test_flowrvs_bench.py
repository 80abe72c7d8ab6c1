"""bench/flowrvs.py runs the tiny preset the release's way and ours, and reports its figures
(timings are not judged)."""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tiny_reports_fps_memory_and_masks_both_ways(tmp_path):
    out = tmp_path / "flowrvs.json"
    done = subprocess.run([sys.executable, "bench/flowrvs.py", "--preset", "tiny", "--device",
                           "cpu", "--frames", "9", "--size", "32", "--window", "5",
                           "--schedule", "official", "--runs", "1", "--warmup", "0",
                           "--threads", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert re.search(r"^device: CPU .*; torch \S+, python \S+, 1 torch threads$", text, re.M), text
    number = r"[\d.,]+"
    for way, plan, encoder in (("release", r"1x9 \(whole\)", "host, no cache"),
                               ("ours", "2x5 ovl 1", "host, cached")):
        assert re.search(rf"^official +1 {way} +{plan} +{encoder} +{number} +{number} +{number} "
                         rf"+{number} 9x32x32 ", text, re.M), (way, text)

    data = json.loads(out.read_text())
    assert data["device"].startswith("CPU") and data["torch"] and data["threads"] == 1
    rows = {r["way"]: r for r in data["results"]}
    assert set(rows) == {"release", "ours"}
    for r in rows.values():
        assert r["schedule"] == "official" and r["steps"] == 1
        for key in ("fps", "median_s", "peak_mib", "loaded_mib"):
            assert r[key] > 0, (key, r)
        assert r["mask_shape"] == [9, 32, 32] and r["mask_dtype"] == "bool"
    assert rows["release"]["windows"] == 1 and rows["release"]["prompt_cache"]["size"] == 0
    assert rows["ours"]["windows"] == 2 and rows["ours"]["prompt_cache"]["size"] > 0
    assert rows["ours"]["same_shape"] is True and 0 <= rows["ours"]["agreement"] <= 1


def test_bench_full_refuses_without_a_gpu():
    import torch
    if torch.cuda.is_available():
        return
    done = subprocess.run([sys.executable, "bench/flowrvs.py", "--preset", "full"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a GPU" in done.stderr


def test_full_preset_has_the_wan_1_3b_sizes():
    import torch

    from engine.flowrvs.presets import (
        FULL_DIT,
        FULL_T5,
        FULL_VAE,
        make_text_encoder,
        make_transformer,
        make_vae,
    )
    with torch.device("meta"):     # shapes only, no memory
        dit = make_transformer(16, seed=0, sizes=FULL_DIT)
        vae = make_vae(1, seed=0, sizes=FULL_VAE)
        t5 = make_text_encoder(seed=0, sizes=FULL_T5)
    assert sum(p.numel() for p in dit.parameters()) == 1_418_996_800  # flowrvs-release.md
    assert tuple(vae.decoder.conv_out.weight.shape) == (1, 96, 3, 3, 3)  # the tuned VAE's head
    assert t5.config.d_model == dit.config.text_dim == 4096
    assert 5.6e9 < sum(p.numel() for p in t5.parameters()) < 5.8e9      # umt5-xxl encoder
