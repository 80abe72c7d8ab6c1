#!/usr/bin/env python3
"""Dataset format throughput: export and import of a project of 1,000 video frames x 10 objects.

    python bench/formats.py            # 1,000 frames x 10 objects (10,000 masks), 320x240
    python bench/formats.py --quick    # 50 frames x 3 objects, a smoke run

For each format: export the project, import the export into a fresh project, and check the
masks came back identical (a benchmark that measures a wrong result is worthless).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app import formats
from app.project.store import ProjectStore
from bench.studio import blob, machine, write_video

SIZE = (320, 240)


def build(tmp: Path, frames: int, objects: int) -> ProjectStore:
    store = ProjectStore(tmp / "source.sqlite")
    media = store.add_media(write_video(tmp / "clip.mp4", frames, SIZE, detail=False))
    for k in range(objects):
        # Each object keeps to its own band: palette PNGs (ytvos) hold one object per pixel.
        band = np.zeros((SIZE[1], SIZE[0]), bool)
        band[:, k * SIZE[0] // objects:(k + 1) * SIZE[0] // objects] = True
        eid = store.add_expression(media["id"], f"object number {k}")["id"]
        for start in range(0, frames, 100):
            store.save_masks(eid, {f: blob((k, f), SIZE[1], SIZE[0], 0.5) & band
                                   for f in range(start, min(start + 100, frames))}, source="engine")
    return store


def masks_of(store: ProjectStore) -> dict:
    """(expression text, frame) -> RLE counts: what a round trip must preserve."""
    out = {}
    for expr in store.list_expressions():
        for obj in store.list_objects(expr["id"]):
            for frame in store.mask_sources(expr["id"], obj["id"]):
                out[expr["text"], frame] = store.get_mask(expr["id"], frame, obj["id"]).tobytes()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    frames, objects = (50, 3) if args.quick else (1000, 10)
    print(f"FlowLabel format benchmark ({'quick' if args.quick else 'full'})")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="flowlabel-formats-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        source = build(tmp, frames, objects)
        want = masks_of(source)
        print(f"project: {frames} frames {SIZE[0]}x{SIZE[1]} x {objects} objects = {len(want):,} masks "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        for name in ("coco", "ytvos", "mevis"):
            spec = formats.get(name)
            out = tmp / (f"{name}.json" if spec.target == "file" else name)
            # COCO JSON carries no frames: its export writes them beside it (images_dir) for the import.
            extra = {"images_dir": tmp / "coco_images"} if name == "coco" else {}
            t0 = time.perf_counter()
            spec.export(source, out, **extra)
            export_s = time.perf_counter() - t0
            with ProjectStore(tmp / f"{name}.sqlite") as target:
                t0 = time.perf_counter()
                spec.import_(target, out, media_root=extra.get("images_dir"))
                import_s = time.perf_counter() - t0
                same = masks_of(target) == want
            print(f"{name:6s} export {export_s:6.2f} s ({len(want) / export_s:8,.0f} masks/s)   "
                  f"import {import_s:6.2f} s ({len(want) / import_s:8,.0f} masks/s)   round trip exact: {same}")
            if not same:
                return 1
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
