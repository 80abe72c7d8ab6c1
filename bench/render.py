#!/usr/bin/env python3
"""Render benchmark: frames per second of overlay clips at 1080p, and the memory a render holds.

    python bench/render.py            # gradio's 1080p a.mp4, all 211 frames
    python bench/render.py --quick    # the first 30 frames (a smoke run)

The mask is real: the clip's yellow title, found per frame by its colour (it changes every frame,
letters and all), saved as one expression; a second mask source (the title grown by 15 px, kept
as an engine's proposal) makes the side-by-side run. Aim: faster than real time at 30 fps.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from app.media import FrameReader
from app.studio import Studio

CLIP = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "videos" / "a.mp4"
REAL_TIME_FPS = 30.0


def machine() -> str:
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy "
            f"{np.__version__}, opencv {cv2.__version__}, pillow {version('pillow')}, imageio-ffmpeg "
            f"{version('imageio-ffmpeg')}")


def title_mask(rgb: np.ndarray) -> np.ndarray:
    """The yellow title of gradio's a.mp4 (RGB about 250, 220, 30)."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return (r > 180) & (g > 150) & (b < 110)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(root: Path, clip: Path, frames: int) -> tuple[Studio, int, int]:
    studio = Studio(root / "bench.sqlite", cache_bytes=0)
    media = studio.add_media(clip)[0]
    frames = min(frames, media["frames"])
    expr = studio.store.add_expression(media["id"], "the yellow title")["id"]
    reader = FrameReader(studio.store.media_file(media["id"]), "video")
    grown, covered = np.ones((31, 31), np.uint8), []
    for chunk in range(0, frames, 16):  # a few frames at a time: the memory figure below stays honest
        masks = {f: title_mask(reader.read(f)) for f in range(chunk, min(chunk + 16, frames))}
        studio.store.save_masks(expr, masks)
        studio.store.save_masks(expr, {f: cv2.dilate(m.view(np.uint8), grown).view(bool) for f, m in masks.items()},
                                source="bench-engine", keep_manual=True)
        covered += [m.mean() for m in masks.values()]
    reader.close()
    coverage = float(np.mean(covered)) * 100
    print(f"clip: {clip.name} {media['width']}x{media['height']} at {media['fps']:g} fps, {frames} frames; "
          f"mask: the yellow title, {coverage:.1f}% of the frame on average")
    return studio, expr, frames


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_render(studio: Studio, label: str, out: Path, frames: int, **kwargs) -> tuple[float, float, float]:
    """Wall-clock frames per second, plus CPU per frame here and in ffmpeg (what other jobs on a
    shared machine do not change)."""
    t0, cpu0, child0 = time.perf_counter(), time.process_time(), child_cpu()
    result = studio.render_clip(out, frames=f"0:{frames}", **kwargs)
    seconds = time.perf_counter() - t0
    n = result["frames"]
    own, ffmpeg = (time.process_time() - cpu0) / n * 1e3, (child_cpu() - child0) / n * 1e3
    print(f"   {label:<40} {result['width']}x{result['height']} {n:4d} frames {seconds:6.2f} s {n / seconds:6.1f} fps"
          f"  {out.stat().st_size / 1e6:5.2f} MB  CPU/frame {own:5.1f} ms + ffmpeg {ffmpeg:5.1f} ms")
    return n / seconds, own, ffmpeg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="first 30 frames only")
    p.add_argument("--clip", type=Path, default=CLIP, help="a 1080p video (default: gradio's a.mp4)")
    args = p.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="flowlabel-bench-render-") as tmp:
        root = Path(tmp)
        studio, expr, frames = setup(root, args.clip, 30 if args.quick else 10**6)
        reader = FrameReader(studio.store.media_file(1), "video")
        t0 = time.perf_counter()
        for f in range(frames):
            reader.read(f)
        decode_fps = frames / (time.perf_counter() - t0)
        reader.close()
        print(f"   {'decode alone (OpenCV)':<40} {frames:4d} frames {decode_fps:6.1f} fps")
        before = peak_rss_mib()
        fps, own, ffmpeg = timed_render(studio, "mp4, image+mask, caption", root / "full.mp4", frames,
                                        expression_id=expr)
        growth = peak_rss_mib() - before
        timed_render(studio, "mp4, mask layer", root / "mask.mp4", frames, expression_id=expr, layers="mask")
        timed_render(studio, "mp4, side by side (mask | proposal), 0.5x", root / "pair.mp4", frames,
                     expression_id=expr, compare=["mask", "bench-engine"], scale=0.5)
        timed_render(studio, "gif, 0.25x, 10 fps", root / "short.gif", frames, expression_id=expr, scale=0.25,
                     fps=10)
        timed_render(studio, "webp, 0.25x, 10 fps", root / "short.webp", frames, expression_id=expr, scale=0.25,
                     fps=10)
        studio.close()
    raw = frames * 1920 * 1080 * 3 / 2**20
    cpu_fps = 1000 / (own + ffmpeg)
    print(f"render 1080p mp4: {fps:.1f} fps wall-clock [{'PASS' if fps > REAL_TIME_FPS else 'MISS'} > "
          f"{REAL_TIME_FPS:.0f} fps]; CPU {own + ffmpeg:.1f} ms a frame ({own:.1f} here + {ffmpeg:.1f} ffmpeg) = "
          f"{cpu_fps:.1f} fps on one free core [{'PASS' if cpu_fps > REAL_TIME_FPS else 'MISS'}]")
    print(f"render memory: peak RSS grew {growth:.0f} MiB during the 1080p render; the process peaked at "
          f"{peak_rss_mib():.0f} MiB over the whole run (the clip's frames raw: {raw:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
