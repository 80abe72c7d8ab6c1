#!/usr/bin/env python3
"""The page measured from the browser (Chromium), on a 1080p video with a large mask.

    python -m bench.page [--strokes 20] [--steps 20]      (from the repository root)

On another video with --video (a small one shows what the page costs beyond the pixels).

1. brush stroke: pointer released -> mask saved on the server and redrawn on the canvas, and
   -> the whole page shown: the mask line under the canvas reads the new revision too
   (aim: median under 100 ms);
2. next frame (the → key) -> the new frame and its masks drawn, and -> the mask line reads the
   new frame (aim: under 50 ms);
3. overlay on/off, outline only, compare, opacity: requests sent (aim: none at all);
4. with --sam-clicks N, a second run of the app with SAM 2 (full-size random weights, the sizes of
   sam2.1-hiera-tiny): a click with the points tool -> SAM's mask saved and redrawn, once the
   frame is embedded (the engine alone: bench/sam.py). Random weights draw ragged masks, so the
   reply carries far more runs than a real object's mask would; its size is printed.
Times are taken inside the page (performance.now() at the input event, when the canvas publishes
the new revision or frame, and when the mask line changes), so the browser's own drawing is
included; "whole page shown" is the later of the canvas and the line, what the annotator waits
for. The load average is printed with them (/proc/loadavg): on a shared machine it moves them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import gradio
import numpy as np
from playwright.sync_api import sync_playwright

from app.studio.studio import Studio
from bench.canvas_driver import CHROMIUM, FLAGS, at, keys, wait_shown
from bench.live_app import LiveApp

VIDEO = Path(gradio.__file__).parent / "media_assets" / "videos" / "a.mp4"
# Timestamps kept in the page: the input event, the canvas's next revision / frame, and each
# change of the mask line under it (the last part of the page that changes after an edit).
PROBE = """() => {
  const el = document.querySelector('#canvas [data-drawn]'), line = document.querySelector('#mask-info');
  window.__marks = [];
  const mark = (kind, text) => window.__marks.push([kind, performance.now(), text || '']);
  document.querySelector('#canvas .fl-ui').addEventListener('pointerup', () => mark('up'), true);
  document.addEventListener('keydown', (e) => e.key === 'ArrowRight' && mark('key'), true);
  new MutationObserver((list) => list.forEach((m) => mark(m.attributeName)))
    .observe(el, {attributes: true, attributeFilter: ['data-revision', 'data-frame']});
  new MutationObserver(() => mark('line', line.textContent))
    .observe(line, {childList: true, subtree: true, characterData: true});
}"""


def latency(page, start: str, end: str, line: str) -> tuple[float, float]:
    """(canvas drawn, the whole page shown) in ms after the input event: the canvas's mark `end`,
    then the later of it and the mask line's first change that reads `line`."""
    page.wait_for_function("(text) => document.querySelector('#mask-info').textContent.includes(text)", arg=line)
    marks = page.evaluate("() => window.__marks.splice(0)")
    t0 = next(t for k, t, _ in marks if k == start)
    drawn = next(t for k, t, _ in marks if k == end and t >= t0)
    shown = next(t for k, t, text in marks if k == "line" and t >= t0 and line in text)
    return drawn - t0, max(drawn, shown) - t0


def loadavg() -> str:
    """The machine's load averages (1, 5, 15 min): the figures mean little without them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def project(tmp: Path, video: Path = VIDEO) -> tuple[Path, int, int]:
    studio = Studio(tmp / "bench.sqlite")
    media = studio.add_media(video)[0]
    h, w = media["height"], media["width"]
    eid = studio.store.add_expression(media["id"], "the large blob")["id"]
    blob = np.zeros((h, w), np.uint8)
    cv2.ellipse(blob, (w // 2, h // 2), (w // 3, h // 3), 0, 0, 360, 1, -1)  # ~35% of the frame
    studio.store.save_masks(eid, {f: blob.astype(bool) for f in range(min(media["frames"], 40))}, source="propagated")
    studio.close()
    print(f"media: {video.name} {w}x{h}, {media['frames']} frames; mask: an ellipse over "
          f"{blob.mean() * 100:.0f}% of each frame")
    return tmp / "bench.sqlite", w, h


@contextlib.contextmanager
def probed_page(app: LiveApp):
    """Chromium at 1600x1000 on the app's first frame, with the timing probe installed."""
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(app.url)
            wait_shown(page, frame=0)
            page.evaluate(PROBE)
            yield page
            browser.close()
    finally:
        app.stop()


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--strokes", type=int, default=20)
    args.add_argument("--steps", type=int, default=20)
    args.add_argument("--video", type=Path, default=VIDEO, help="another video to measure on (default: a.mp4, 1080p)")
    args.add_argument("--sam-clicks", type=int, default=0, help="also time N SAM 2 clicks (a second app run)")
    opts = args.parse_args()
    tmp = Path(tempfile.mkdtemp())
    path, w, h = project(tmp, opts.video)
    load = loadavg()
    with probed_page(LiveApp(path)) as page:
        strokes, browser_ms = [], {"stroke": [], "frame": []}
        for i in range(opts.strokes):
            rev = page.locator("#canvas [data-drawn]").get_attribute("data-revision")
            y = (100 + 20 * i) * h // 1080
            page.mouse.move(*at(page, w // 10, y))
            page.mouse.down()
            page.mouse.move(*at(page, w // 5, y + 10 * h // 1080))
            page.mouse.up()
            new = wait_shown(page, changed_from=rev)["revision"]
            strokes.append(latency(page, "up", "data-revision", f"revision {new}"))
            browser_ms["stroke"].append(json.loads(page.locator("#canvas [data-drawn]").get_attribute("data-timing")))

        steps = []
        for f in range(1, opts.steps + 1):
            keys(page, "ArrowRight") if f == 1 else page.keyboard.press("ArrowRight")
            wait_shown(page, frame=f)
            steps.append(latency(page, "key", "data-frame", f"frame {f} "))
            browser_ms["frame"].append(json.loads(page.locator("#canvas [data-drawn]").get_attribute("data-timing")))

        requests = []
        page.on("request", lambda r: requests.append(r.url))
        for key in ("o", "o", "l", "l", "c", "c"):
            page.keyboard.press(key)
        page.locator("#canvas-opacity").evaluate("e => { e.value = 0.8; e.dispatchEvent(new Event('input')); }")
        page.wait_for_timeout(1000)
    print(f"load average before: {load}, after: {loadavg()}")
    for label, pairs, aim, kind in (("brush stroke released", strokes, 100, "stroke"), ("next frame (->)", steps, 50, "frame")):
        for what, times in (("canvas drawn", [a for a, _ in pairs]), ("whole page shown", [b for _, b in pairs])):
            print(f"{label + ' -> ' + what:<40} median {statistics.median(times):6.1f} ms  p95 "
                  f"{np.percentile(times, 95):6.1f} ms  max {max(times):6.1f} ms  (aim: median < {aim} ms, n={len(times)})")
        parts = browser_ms[kind]
        print("    in the browser: " + ", ".join(f"{k} {statistics.median(p[k] for p in parts):.1f} ms"
                                               for k in ("decode", "masks", "draw")))
    print(f"{'overlay toggles (7 changes)':<32} {len(requests)} request(s)  (aim: 0)")
    if opts.sam_clicks:
        sam_clicks(tmp, path, w, h, opts.sam_clicks)
    return 0


def sam_clicks(tmp: Path, path: Path, w: int, h: int, n: int) -> None:
    from engine.sam2.presets import FULL, write_model_dir
    times, sizes = [], []
    with probed_page(LiveApp(path, "--sam-model", str(write_model_dir(tmp / "sam", FULL, seed=0)))) as page:
        page.on("response", lambda r: "component_server" in r.url and sizes.append(len(r.body())))
        keys(page, "t")  # the points tool
        for i in range(n + 1):  # the first click waits for the frame's embedding: not counted
            rev = page.locator("#canvas [data-drawn]").get_attribute("data-revision")
            page.mouse.click(*at(page, w // 2 + (i % 5) * w // 40, h // 2 + (i % 3) * h // 40))
            new = wait_shown(page, changed_from=rev, timeout=120_000)["revision"]
            if i:
                times.append(latency(page, "up", "data-revision", f"revision {new}")[1])
            else:
                page.evaluate("() => window.__marks.splice(0)")
    print(f"{'SAM 2 click -> saved and redrawn':<32} median {statistics.median(times):6.1f} ms  p95 "
          f"{np.percentile(times, 95):6.1f} ms  max {max(times):6.1f} ms  (n={len(times)}; reply median "
          f"{statistics.median(sizes) / 1024:.0f} KB)")


if __name__ == "__main__":
    sys.exit(main())
