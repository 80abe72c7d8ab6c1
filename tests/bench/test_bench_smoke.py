"""bench/studio.py --quick runs and prints its figures (timings are not judged here; exactness is)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_prints_three_figures():
    done = subprocess.run([sys.executable, "bench/studio.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^machine: .*\d+ CPUs.*numpy .*opencv .*pycocotools ", out, re.M), out
    figures = [r"^frame display: cold median [\d.]+ ms p95 [\d.]+ ms, warm median [\d.]+ ms p95 [\d.]+ ms "
               r"\[(PASS|MISS) ",
               r"^mask save: median [\d.]+ ms p95 [\d.]+ ms \[(PASS|MISS) ",
               r"^coco export: [\d,]+ masks/s vs baseline [\d,]+ masks/s, ratio [\d.]+ \[(PASS|MISS) "]
    for figure in figures:
        assert len(re.findall(figure, out, re.M)) == 1, f"missing {figure!r} in:\n{out}"
    exact = re.search(r"^exact jumps: median [\d.]+ ms p95 [\d.]+ ms .* identical to sequential decoding "
                      r"(\d+)/(\d+)$", out, re.M)
    assert exact and exact.group(1) == exact.group(2) == "150", out


def test_formats_bench_quick_round_trips_every_format():
    done = subprocess.run([sys.executable, "bench/formats.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for name in ("coco", "ytvos", "mevis"):
        assert re.search(rf"^{name} +export +[\d.]+ s .* round trip exact: True$", done.stdout, re.M), done.stdout


def test_batch_bench_quick_runs_in_process():
    """Run from outside the repository: the bench finds the project through its installation."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "batch.py"), "--quick", "--no-ray"],
                          cwd=ROOT.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert re.search(r"^in-process: \d+ expressions in [\d.]+ s = [\d.]+ expressions/s$", done.stdout, re.M), \
        done.stdout


def test_render_bench_quick_prints_its_figures():
    done = subprocess.run([sys.executable, "bench/render.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^machine: .*\d+ CPUs.*imageio-ffmpeg ", out, re.M), out
    for label in ("mp4, image\\+mask, caption +1920x1080 +30 frames", "mp4, mask layer +1920x1080",
                  r"mp4, side by side \(mask \| proposal\), 0.5x 1924x540", "gif, 0.25x, 10 fps +480x270 +10 frames",
                  "webp, 0.25x, 10 fps +480x270 +10 frames"):
        assert re.search(rf"^   {label} .* [\d.]+ fps .* CPU/frame +[\d.]+ ms \+ ffmpeg +[\d.]+ ms$", out, re.M), out
    assert re.search(r"^render 1080p mp4: [\d.]+ fps wall-clock \[(PASS|MISS) > 30 fps\]; CPU [\d.]+ ms a frame .* "
                     r"= [\d.]+ fps on one free core \[(PASS|MISS)\]$", out, re.M), out
    assert re.search(r"^render memory: peak RSS grew \d+ MiB", out, re.M), out


def test_api_bench_quick_prints_median_and_p95_for_1_and_8_clients(tmp_path):
    temp = tmp_path / "temp"  # the bench's temp dir: gradio_client's download folders land here
    temp.mkdir()
    done = subprocess.run([sys.executable, "bench/api.py", "--quick", "--calls", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TMPDIR": str(temp), "GRADIO_TEMP_DIR": ""})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert list(temp.iterdir()) == []  # the bench cleaned up after itself (and after its app)
    for kind in ("shared TLS context", "default client"):
        for name in ("save_mask", "get_mask"):
            assert re.search(rf"^{name} 1 client, {kind}: median [\d.]+ ms p95 [\d.]+ ms over 2 calls "
                             r"\[(PASS|MISS) < 80 ms\]$", done.stdout, re.M), done.stdout
            assert re.search(rf"^{name} 8 clients, {kind}: median [\d.]+ ms p95 [\d.]+ ms over 16 calls$",
                             done.stdout, re.M), done.stdout


def test_sam_bench_quick_prints_its_figures():
    done = subprocess.run([sys.executable, "bench/sam.py", "--quick", "--threads", "1", "--memory-frames", "30"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for figure in (r"^embedding: median [\d.]+ s per frame", r"^click -> mask, engine only: median [\d.]+ ms",
                   r"^propagation over \d+ frames: SAM 2 [\d.]+ frames/s, DIS [\d.]+ frames/s$",
                   r"^GrabCut box -> mask on the same frames: median [\d.]+ ms$",
                   r"^memory over 30 tracked frames .* growth after frame \d+: [+-]\d+ MB"):
        assert re.search(figure, done.stdout, re.M), f"missing {figure!r} in:\n{done.stdout}"


def test_caption_bench_prints_time_and_measures_per_length():
    done = subprocess.run([sys.executable, "bench/caption.py", "300", "3000"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for length in ("300", "3,000"):
        found = re.search(rf"^ +{length} characters: +[\d.]+ s, (\d+) measures$", done.stdout, re.M)
        assert found and int(found.group(1)) <= 30, done.stdout  # halving: a few dozen at most
