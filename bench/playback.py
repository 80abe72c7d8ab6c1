#!/usr/bin/env python3
"""Playback in Chromium: Play on a 1080p video (gradio's a.mp4, 30 fps) with a large mask on
every frame, as the annotator sees it (frames fetched ahead, pictures decoded, masks drawn).

    python -m bench.playback [--speed 1] [--video PATH]      (from the repository root)

Prints the achieved rate (frames shown / time from the first to the last), the median and p95
time between shown frames, and the load average before and after (the machine is shared: quote
it with the figures). Aim: the video's own rate (>= 25 fps for a.mp4).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from app.studio.studio import Studio
from app.ui.playback import MAX_RUN as PLAY_RUN
from bench.live_app import LiveApp
from bench.page import VIDEO, probed_page, project


def mask_every_frame(path: Path) -> tuple[int, float]:
    """The bench project's mask (first 40 frames) on every frame; (frames, fps)."""
    studio = Studio(path)
    store = studio.store
    media, eid = store.list_media()[0], store.list_expressions()[0]["id"]
    mask = store.get_mask(eid, 0)
    store.save_masks(eid, {f: mask for f in range(media["frames"])}, source="propagated")
    studio.close()
    return media["frames"], media["fps"]


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--speed", type=float, default=1.0, choices=(0.25, 0.5, 1.0, 1.5, 2.0))
    args.add_argument("--video", type=Path, default=VIDEO)
    opts = args.parse_args()
    path, w, h = project(Path(tempfile.mkdtemp()), opts.video)
    frames, fps = mask_every_frame(path)
    load_before = os.getloadavg()
    with probed_page(LiveApp(path)) as page:
        page.locator("#play-speed").select_option(f"{opts.speed:g}")
        page.locator("#play").click()
        page.wait_for_function("() => !JSON.parse(document.querySelector('#canvas [data-play]').dataset.play).on",
                               timeout=int(frames / fps / opts.speed * 1000 * 4) + 30_000)
        play = json.loads(page.locator("#canvas [data-play]").get_attribute("data-play"))
    load_after = os.getloadavg()
    times = play["times"]
    gaps = np.diff(times)
    rate = (len(times) - 1) / (times[-1] - times[0]) * 1000
    print(f"{opts.video.name} {w}x{h}, {frames} frames at {fps:g} fps, speed {opts.speed:g}x "
          f"(aim: {fps * opts.speed:g} fps)")
    print(f"played {len(times)} frames: {rate:.1f} fps achieved; between frames median "
          f"{statistics.median(gaps):.1f} ms, p95 {np.percentile(gaps, 95):.1f} ms, max {gaps.max():.1f} ms")
    print("where the time goes (median): a request for frames "
          f"{statistics.median(play['fetchMs']):.0f} ms (up to {PLAY_RUN} frames), decoding a picture "
          f"{statistics.median(play['decodeMs']):.1f} ms (off the main thread), drawing a frame "
          f"{statistics.median(play['drawMs']):.1f} ms")
    print("load average (1, 5, 15 min): before " + " ".join(f"{v:.2f}" for v in load_before) +
          ", after " + " ".join(f"{v:.2f}" for v in load_after) + f" ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
