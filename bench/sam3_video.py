#!/usr/bin/env python3
"""sam3 on a long video through the studio: tiny seeded SAM 3 detector + SAM 3 tracker (random
weights) on gradio's world.mp4 (480x270, 901 frames), every instance followed and its track kept.

    python bench/sam3_video.py                  # the whole clip, trackers that see the object
    python bench/sam3_video.py --lost           # trackers that never see it: re-detection every 3rd frame
    python bench/sam3_video.py --frames 12      # a smoke run

Figures: frames/s of Studio.segment (decode, detect, track k instances, save); RSS during the run
and after it, beside what the clip would take as one array (T x H x W x 3 bytes; sam3 reads it
frame by frame from the frame cache instead), and the bytes the kept video candidates take.
Random weights: the speed and memory are the plumbing's, the masks are not a real model's.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from app.studio import Studio
from bench.sam import CLIP, rss_mb
from engine.sam2.presets import SAM3_TRACKER_TINY, make_video_model
from engine.sam3.presets import write_model_dir


def tracker_dir(root: Path, sees_object: bool) -> Path:
    """The tiny SAM 3 tracker; untouched, its random weights call the object absent on every frame."""
    model = make_video_model(SAM3_TRACKER_TINY, seed=0)
    if sees_object:
        with torch.no_grad():
            model.mask_decoder.pred_obj_score_head.proj_out.bias.add_(1.0)
    model.save_pretrained(root / "tracker")
    return root / "tracker"


def first_frames(clip: Path, count: int, folder: Path) -> Path:
    """The clip's first `count` frames as an MJPG file (OpenCV's wheel writes no lossless codec)."""
    import cv2
    reader = cv2.VideoCapture(str(clip))
    size = (int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = folder / f"{clip.stem}-{count}.avi"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for _ in range(count):
        ok, frame = reader.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    reader.release()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--frames", type=int, default=None, help="use the clip's first N frames (default: all)")
    p.add_argument("--lost", action="store_true", help="a tracker that never sees the object")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-sam3-") as tmp:
        tmp = Path(tmp)
        paths = {"model": str(write_model_dir(tmp / "sam3")), "tracker": str(tracker_dir(tmp, not args.lost)),
                 "threshold": 0.0}
        studio = Studio(tmp / "bench.sqlite", device="cpu", engine_paths={"sam3": paths})
        media = studio.add_media(first_frames(args.clip, args.frames, tmp) if args.frames else args.clip)[0]
        eid = studio.store.add_expression(media["id"], "the red ball")["id"]
        frames, (h, w) = media["frames"], (media["height"], media["width"])
        studio.engines.load("sam3")
        samples = {}

        def progress(fraction, message):
            done = int(fraction * frames)
            for mark in (10, frames // 4, frames // 2, 3 * frames // 4):
                if done >= mark:
                    samples.setdefault(mark, rss_mb())

        before = rss_mb()
        t0 = time.perf_counter()
        studio.segment(eid, "sam3", progress=progress)
        elapsed = time.perf_counter() - t0
        after = rss_mb()
        offer = studio.offer(eid)
        kept = sum(t.nbytes for t in offer.tracks) if offer and offer.tracks else 0
        count = len(offer.tracks) if offer and offer.tracks else 0
        print(f"sam3 on {args.clip.name}: {frames} frames {w}x{h}, {count} instance(s), tracker "
              f"{'never sees the object (re-detection)' if args.lost else 'sees the object'}, {args.threads} thread(s)")
        print(f"Studio.segment: {elapsed:.1f} s = {frames / elapsed:.2f} frames/s")
        print(f"RSS: {before:.0f} MB before, " + ", ".join(f"{mb:.0f} MB at frame {f}" for f, mb in sorted(samples.items()))
              + f", {after:.0f} MB after (growth {after - before:+.0f} MB; the clip array alone is "
              f"{frames * h * w * 3 / 2**20:.0f} MB, one bool track {frames * h * w / 2**20:.0f} MB)")
        print(f"video candidates kept: {count} tracks, {kept / 2**20:.2f} MB as RLE "
              f"({count * frames * h * w / 2**20:.0f} MB as bool arrays)")
        studio.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
