"""bench/flowseg.py runs the tiny preset and prints its figures (timings are not judged)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tiny_prints_latency_memory_and_variant_costs():
    done = subprocess.run([sys.executable, "bench/flowseg.py", "--preset", "tiny", "--runs", "1",
                           "--warmup", "0", "--threads", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^device: CPU .*torch ", out, re.M), out
    assert re.search(r"^\[tiny\] latency per 640x480 image: median [\d.,]+ ms, p90 [\d.,]+ ms; "
                     r"peak RSS [\d,]+ MiB", out, re.M), out
    for variant in ("plain", r"\+SR", r"\+SR\+CR", r"\+BAR"):
        assert re.search(rf"^\[tiny\] {variant} +[\d,]+ ", out, re.M), (variant, out)
    assert re.search(r"^\[tiny\] BSF\+BAR over plain: \+[\d,]+ parameters", out, re.M), out


def test_bench_full_refuses_without_a_gpu():
    import torch
    if torch.cuda.is_available():
        return
    done = subprocess.run([sys.executable, "bench/flowseg.py", "--full"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a GPU" in done.stderr
