#!/usr/bin/env python3
"""Batch pre-annotation throughput: in-process vs a local Ray instance (CPU actors).

    python bench/batch.py                 # 8 videos x 16 frames + 8 images, 32 expressions
    python bench/batch.py --quick         # fewer, smaller media (a smoke run)
    python bench/batch.py --actors 1 2 4  # which Ray actor counts to run

The engine is bench/work_engine.py's `bench-work`: brightness masks after `--iterations`
Gaussian blurs per frame, a CPU cost like a small model's that releases no GIL tricks. Each
run starts from a fresh copy of the same generated project; the Ray runs must write the same
masks as the in-process run (checked). Expressions/s are given over the whole run and over
the part after Ray's start-up (connecting, starting the actors), which a long batch amortises.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.commands import batch
from app.project.store import ProjectStore
from app.studio.studio import Studio
from bench import work_engine
from bench.studio import write_video

ENGINE = work_engine.NAME


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        from importlib.metadata import version
        ray_version = version("ray")
    except Exception:
        ray_version = "not installed"
    return (f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs ({usable} usable), {mem:.0f} GiB RAM, "
            f"no GPU used; python {platform.python_version()}, ray {ray_version}")


def build(folder: Path, videos: int, frames: int, size: tuple[int, int], images: int) -> Path:
    folder.mkdir(parents=True)
    studio = Studio(folder / "p.sqlite")
    for i in range(videos):
        # Another frame rate per file: distinct files (the store deduplicates identical media).
        write_video(folder / f"v{i}.mp4", frames, size, detail=False, fps=10.0 + i)
        media = studio.add_media(folder / f"v{i}.mp4")[0]
        for text in ("the square", "the white cells", "the background"):
            studio.store.add_expression(media["id"], text)
    for i in range(images):
        image = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"i{i}.png"), image)
        media = studio.add_media(folder / f"i{i}.png")[0]
        studio.store.add_expression(media["id"], "the bright patch")
    studio.close()
    return folder / "p.sqlite"


def masks(path: Path) -> list:
    with ProjectStore(path) as store:
        return [(m["object_id"], m["frame"], m["counts"], m["source"]) for m in store.iter_masks()]


def run(template: Path, work: Path, name: str, iterations: int, ray_address=None, actors: int = 1):
    folder = work / name
    shutil.copytree(template.parent, folder)
    studio = Studio(folder / template.name, device="cpu", engine_paths={ENGINE: {"iterations": iterations}})
    summary = batch.annotate(studio, ENGINE, ray_address=ray_address, cpu_actors=actors,
                             engine_modules=[work_engine.__name__],
                             engine_paths={ENGINE: {"iterations": iterations}}, device="cpu", show_progress=False)
    studio.close()
    return summary, masks(folder / template.name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 videos x 6 frames + 2 images")
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=(160, 120), metavar=("W", "H"))
    p.add_argument("--iterations", type=int, default=100, help="blurs per frame (the engine's cost)")
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="Ray CPU actor counts to run")
    p.add_argument("--no-ray", action="store_true", help="in-process only")
    args = p.parse_args(argv)
    if args.quick:
        args.videos, args.frames, args.images, args.iterations = 2, 6, 2, 20
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="flowlabel-bench-batch-") as tmp:
        work = Path(tmp)
        template = build(work / "template", args.videos, args.frames, tuple(args.size), args.images)
        n_expr = 3 * args.videos + args.images
        print(f"project: {args.videos} videos x {args.frames} frames + {args.images} images at "
              f"{args.size[0]}x{args.size[1]}, {n_expr} expressions; engine {ENGINE}, {args.iterations} "
              "blurs per frame")
        base, reference = run(template, work, "in-process", args.iterations)
        print(f"in-process: {base.annotated} expressions in {base.seconds:.2f} s = "
              f"{base.annotated / base.seconds:.2f} expressions/s")
        if not args.no_ray:
            for n in args.actors:
                summary, result = run(template, work, f"ray-{n}", args.iterations, ray_address="local", actors=n)
                steady = summary.seconds - summary.startup_seconds
                same = "identical masks" if result == reference else "MASKS DIFFER"
                print(f"ray local, {n} CPU actor(s): {summary.annotated} expressions in {summary.seconds:.2f} s = "
                      f"{summary.annotated / summary.seconds:.2f} expressions/s; after {summary.startup_seconds:.1f} s "
                      f"start-up: {summary.annotated / steady:.2f} expressions/s ({same})")
                if result != reference:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
