#!/usr/bin/env python3
"""FlowRVS benchmark: frames per second and peak memory of FlowRVSPipeline, the release's way
and ours side by side, for the 1-step and 4-step schedules.

    python bench/flowrvs.py                                   # tiny preset, 17 frames of 64x64
    python bench/flowrvs.py --preset demo --frames 17 --size 64 --runs 3 --threads 1
    python bench/flowrvs.py --preset demo --frames 33 --size 64 --window 9
    python bench/flowrvs.py --preset full --frames 81 --height 480 --width 832   # needs a GPU

Presets (nothing is downloaded):
  tiny   the tests' toy Wan layout, random weights (engine.flowrvs.presets)
  demo   the shipped demo weights in assets/flowrvs-demo (its box is 64x64: larger frames are
         resized down to it, as the release resizes into 480x832)
  full   Wan2.1-T2V-1.3B's sizes (1.42B DiT, Wan VAE, 5.7B umt5-xxl encoder) with random
         weights, built from configs; GPU only (~14 GiB of weights in bf16)

Ways, each with the same weights and the same clip:
  release  the whole clip in one pass (padded to 4k+1 frames), the text encoder resident on the
           model's device, the expression encoded on every call
  ours     windows of --window frames (4k+1; default: the pipeline's, 81 on CPU or from free
           GPU memory) sharing --overlap frames, blended; the text encoder offloaded to the
           host after encoding; the prompt-embedding cache (warm after --warmup calls)
On a CPU the text encoder lives in host memory either way, so there only the windows and the
cache differ. A clip no longer than the window is one pass for both ways.

Each (schedule, way) runs in its own subprocess so that its peak memory is its own. CPU: the
peak RSS of the process (resource.getrusage: loading included), next to the RSS once the
model was loaded. GPU: torch.cuda.max_memory_allocated from after loading (weights on the
GPU included) through the warm-up and timed calls. fps = frames / median seconds of --runs
calls of pipe(frames, expression, ...) after --warmup calls. The masks of both ways are
compared (shape, and the fraction of pixels on which they agree).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.flowseg import device_name, peak_rss_mib, rss_mib, timed

EXPRESSION = "the red square moving right"
PRESETS = ("tiny", "demo", "full")
WAYS = ("release", "ours")
STEPS = {"official": 1}      # the other schedules take --steps


def bench_clip(num_frames: int, height: int, width: int, seed: int = 0):
    """uint8 [T,H,W,3]: a red square moving right and a blue circle moving down, bouncing
    off the borders, over a dark noisy background (the demo world's look)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    base = rng.integers(20, 60, 3)
    frames = np.clip(base + rng.integers(-8, 9, (height, width, 3)), 0, 255).astype(np.uint8)
    frames = np.repeat(frames[None], num_frames, axis=0)
    r = max(2, min(height, width) // 10)
    yy, xx = np.mgrid[0:height, 0:width]

    def bounce(start: float, step: float, t: int, size: int) -> float:
        span = max(1.0, size - 2 * r - 2)
        p = (start + step * t) % (2 * span)
        return r + 1 + (p if p <= span else 2 * span - p)

    for t in range(num_frames):
        x = bounce(0.1 * width, 3, t, width)
        frames[t, max(0, height // 3 - r):height // 3 + r + 1,
               max(0, int(x) - r):int(x) + r + 1] = (220, 40, 40)
        cy = bounce(0.2 * height, 2, t, height)
        circle = (xx - 0.7 * width) ** 2 + (yy - cy) ** 2 <= r * r
        frames[t][circle] = (50, 80, 230)
    return frames


def load_pipeline(args, way: str):
    """The preset's pipeline set up for one way."""
    options = (dict(offload_text_encoder=False, prompt_cache_size=0) if way == "release" else
               dict(offload_text_encoder=True))
    if args.preset == "demo":
        from engine.flowrvs.demo import DEMO_DIR
        from engine.flowrvs.pipeline import FlowRVSPipeline
        return FlowRVSPipeline.from_pretrained(DEMO_DIR, device=args.device, dtype=args.dtype,
                                               **options)
    from engine.flowrvs.presets import random_pipeline
    box = (args.height, args.width) if args.preset == "tiny" else None
    return random_pipeline(args.preset, seed=0, device=args.device, dtype=args.dtype,
                           max_size=box, **options)


class PhasePeaks:
    """Seconds and (on CUDA) peak allocated memory of each pipeline phase: the prompt, the
    VAE encoding, the DiT's velocity calls and the mask decoding, so the report can say what
    share of the peak the DiT accounts for. Wraps the pipeline's methods on the instance; the
    overall peak is kept across the resets each phase makes."""

    PHASES = ("encode_prompt", "encode_video", "velocity", "decode_mask")

    def __init__(self, pipe, cuda: bool):
        import torch
        self.torch, self.cuda = torch, cuda
        self.seconds = {name: 0.0 for name in self.PHASES}
        self.peak_mib = {name: 0.0 for name in self.PHASES}
        self.overall = 0.0
        for name in self.PHASES:
            setattr(pipe, name, self._wrap(name, getattr(pipe, name)))

    def _max(self) -> float:
        return self.torch.cuda.max_memory_allocated() / 2 ** 20 if self.cuda else 0.0

    def _wrap(self, name, fn):
        def wrapped(*a, **k):
            if self.cuda:
                self.torch.cuda.synchronize()
                self.overall = max(self.overall, self._max())
                self.torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            if self.cuda:
                self.torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - t0
            self.peak_mib[name] = max(self.peak_mib[name], self._max())
            self.overall = max(self.overall, self._max())
            return out
        return wrapped

    def peak(self) -> float:
        return max(self.overall, self._max())


def worker(args) -> dict:
    """One (schedule, way) in this process; the masks of the last call go to --masks-out."""
    import numpy as np
    import torch

    from engine.flowrvs.frames import padded_length
    from engine.flowrvs.windows import default_overlap, plan_windows

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    before = rss_mib()
    t0 = time.perf_counter()
    pipe = load_pipeline(args, args.way)
    sync()
    load_s = time.perf_counter() - t0
    frames = bench_clip(args.frames, args.height, args.width)
    if args.way == "release":
        window = padded_length(args.frames)
        overlap = 0
    else:
        window = args.window or pipe.default_window((args.height, args.width))
        overlap = args.overlap if args.overlap is not None else default_overlap(window)
    windows = plan_windows(args.frames, window, overlap)
    steps = STEPS.get(args.schedule, args.steps)
    loaded = torch.cuda.memory_allocated() / 2 ** 20 if cuda else rss_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    phases = PhasePeaks(pipe, cuda)

    masks = []

    def call():
        masks[:] = [pipe(frames, EXPRESSION, num_steps=steps, schedule=args.schedule,
                         window=window, overlap=overlap)]

    times = timed(call, args.runs, args.warmup, sync)
    peak = phases.peak() if cuda else peak_rss_mib()
    np.save(args.masks_out, masks[0])
    median = statistics.median(times)
    params = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
              for name in ("transformer", "vae", "text_encoder")}
    return {
        "preset": args.preset, "way": args.way, "schedule": args.schedule, "steps": steps,
        "frames": args.frames, "size": [args.height, args.width],
        "model_size": list(pipe.model_size(args.height, args.width)),
        "window": window, "overlap": overlap, "windows": len(windows),
        "text_encoder_device": str(next(pipe.text_encoder.parameters()).device),
        "prompt_cache": {"size": pipe.prompt_cache.maxsize, "hits": pipe.prompt_cache.hits,
                         "misses": pipe.prompt_cache.misses},
        "dtype": str(pipe.dtype), "threads": torch.get_num_threads(), "params": params,
        "load_s": load_s, "times_s": times, "median_s": median, "fps": args.frames / median,
        "peak_mib": peak, "loaded_mib": loaded, "rss_before_mib": before, "gpu": cuda,
        "mask_shape": list(masks[0].shape), "mask_dtype": str(masks[0].dtype),
        "mask_fraction": float(masks[0].mean()),
        "calls": args.runs + args.warmup,
        "phase_s": phases.seconds, "phase_peak_mib": phases.peak_mib if cuda else None,
        "dit_weights_mib": sum(p.numel() * p.element_size()
                               for p in pipe.transformer.parameters()) / 2 ** 20,
    }


def run_worker(args, schedule: str, way: str, masks_out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--way", way,
           "--schedule", schedule, "--masks-out", str(masks_out), "--preset", args.preset,
           "--device", args.device, "--frames", str(args.frames), "--height", str(args.height),
           "--width", str(args.width), "--steps", str(args.steps), "--runs", str(args.runs),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
    for flag in ("dtype", "window", "overlap"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"[{schedule} {way}] failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def report(header: dict, rows: list) -> None:
    first = rows[0]
    p = first["params"]
    print(f"preset {header['preset']}: {sum(p.values()) / 1e6:,.2f}M parameters (DiT "
          f"{p['transformer'] / 1e6:,.2f}M, VAE {p['vae'] / 1e6:,.2f}M, text encoder "
          f"{p['text_encoder'] / 1e6:,.2f}M), {first['dtype']}; clip {first['frames']} frames "
          f"of {first['size'][0]}x{first['size'][1]} (model {first['model_size'][0]}x"
          f"{first['model_size'][1]}); expression {EXPRESSION!r}")
    mem = "peak GPU MiB" if first["gpu"] else "peak RSS MiB"
    loaded = "loaded MiB" if first["gpu"] else "RSS loaded"
    print(f"{'schedule':<9} {'steps':>5} {'way':<8} {'windows':<14} {'text encoder':<22} "
          f"{'fps':>8} {'median s':>9} {mem:>13} {loaded:>11} {'masks':<14} {'agree':>7}")
    for r in rows:
        if r["windows"] == 1:
            plan = f"1x{r['frames']} (whole)"
        else:
            plan = f"{r['windows']}x{r['window']} ovl {r['overlap']}"
        where = "host" if r["text_encoder_device"] == "cpu" else r["text_encoder_device"]
        text = f"{where}, " + ("cached" if r["prompt_cache"]["size"] > 0 else "no cache")
        agree = (f"{r['agreement'] * 100:.2f}%" if "agreement" in r else
                 "shapes differ" if r.get("same_shape") is False else "-")
        shape = "x".join(str(v) for v in r["mask_shape"])
        print(f"{r['schedule']:<9} {r['steps']:>5} {r['way']:<8} {plan:<14} {text:<22} "
              f"{r['fps']:>8.2f} {r['median_s']:>9.4f} {r['peak_mib']:>13,.0f} "
              f"{r['loaded_mib']:>11,.0f} {shape:<14} {agree:>7}")
    if not first["gpu"]:
        print("on a CPU the text encoder lives in host memory either way; peak RSS includes "
              "loading, 'RSS loaded' is the RSS once the model was loaded")
    print("agree: pixels on which ours' masks equal the release way's (same shapes required)")
    for r in rows:
        secs = ", ".join(f"{k} {v / r['calls']:.3f}" for k, v in r["phase_s"].items())
        print(f"{r['schedule']} {r['way']}: seconds per call: {secs}")
        if r["phase_peak_mib"]:
            dit = r["phase_peak_mib"]["velocity"]
            print(f"{r['schedule']} {r['way']}: peak while the DiT runs {dit:,.0f} MiB = "
                  f"{dit / r['peak_mib'] * 100:.0f}% of the peak {r['peak_mib']:,.0f} MiB (DiT "
                  f"weights {r['dit_weights_mib']:,.0f} MiB = "
                  f"{r['dit_weights_mib'] / r['peak_mib'] * 100:.0f}%)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--frames", type=int, default=17, help="clip length (default 17)")
    parser.add_argument("--size", type=int, default=64, help="square frames of this side "
                        "(default 64); --height/--width override")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--schedule", action="append", choices=["official", "linear", "mevis"],
                        help="repeatable; default: official (1 step) and mevis")
    parser.add_argument("--steps", type=int, default=4, help="steps of linear/mevis (default 4)")
    parser.add_argument("--window", type=int, default=None,
                        help="ours: frames per window, 4k+1 (default: the pipeline's)")
    parser.add_argument("--overlap", type=int, default=None,
                        help="ours: frames shared by neighbouring windows (default (window-1)//4)")
    parser.add_argument("--ways", action="append", choices=WAYS,
                        help="repeatable; default: both (release, then ours)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="let the full preset run on a CPU (slow; ~30 GiB of RAM)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the figures as JSON to PATH")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--masks-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.height = args.height or args.size
    args.width = args.width or args.size
    if args.frames < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--frames and --runs must be at least 1, --warmup at least 0")
    if args.window is not None:
        from engine.flowrvs.windows import check_window
        try:
            check_window(args.window)
        except ValueError as error:
            parser.error(f"--window: {error}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from engine.registry import pick_device
    args.device = pick_device(args.device)
    if args.worker:
        args.schedule = args.schedule[0]
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    if args.preset == "full" and not args.device.startswith("cuda") and not args.allow_cpu:
        print("the full preset (Wan2.1-T2V-1.3B sizes) needs a GPU (no CUDA device here); pass "
              "--allow-cpu to run it on the CPU anyway", file=sys.stderr)
        return 2
    threads = args.threads or torch.get_num_threads()
    header = {"device": device_name(args.device), "torch": torch.__version__,
              "python": platform.python_version(), "threads": threads, "preset": args.preset}
    print(f"device: {header['device']}; torch {header['torch']}, python {header['python']}, "
          f"{threads} torch threads")
    rows = []
    with tempfile.TemporaryDirectory(prefix="flowrvs-bench-") as tmp:
        for schedule in args.schedule or ["official", "mevis"]:
            masks = {}
            for way in args.ways or WAYS:
                masks[way] = Path(tmp) / f"{schedule}-{way}.npy"
                try:
                    rows.append(run_worker(args, schedule, way, masks[way]))
                except RuntimeError as error:
                    print(error, file=sys.stderr)
                    return 1
            if set(masks) != set(WAYS):
                continue
            import numpy as np
            a, b = np.load(masks["release"]), np.load(masks["ours"])
            rows[-1]["same_shape"] = a.shape == b.shape
            if a.shape == b.shape:
                rows[-1]["agreement"] = float((a == b).mean())
    report(header, rows)
    if args.json:
        args.json.write_text(json.dumps({**header, "expression": EXPRESSION, "results": rows},
                                        indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
