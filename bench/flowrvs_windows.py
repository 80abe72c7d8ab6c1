#!/usr/bin/env python3
"""FlowRVS windows: memory per window frame, the fitted window figures, and a long clip run in
windows under a memory target. Our way only (text encoder offloaded, prompt cached).

    python bench/flowrvs_windows.py --preset full --height 480 --width 832 --frames 300 \
        --target-gb 20 --json windows.json                    # on a GPU
    python bench/flowrvs_windows.py --preset tiny --device cpu --size 32 --sweep 5,9 --frames 21

1. Load the preset once. "loaded" is the memory held once the model is loaded (CUDA:
   torch.cuda.memory_allocated; CPU: RSS).
2. Sweep: for each --sweep length n (4k+1), a clip of n frames in one window; extra(n) = the
   peak during the call minus "loaded" (CUDA: max_memory_allocated after a reset; CPU: the
   process's VmHWM after resetting it through /proc/self/clear_refs, when the kernel allows).
3. Fit extra(n) = (fixed + per_frame * n) * h * w * element_size (engine.flowrvs.memory.fit) and
   print the WindowMemory(...) for engine/flowrvs/memory.py.
4. Pick the largest 4k+1 window whose loaded + extra fits --target-gb with the fitted figures,
   run --frames frames in windows of it, and report fps and the peak against the target.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.flowrvs import EXPRESSION, bench_clip
from bench.flowseg import device_name, rss_mib

GB = 1e9


class MemoryProbe:
    """Peak memory of one call, from a reset: CUDA allocator figures, or the process's
    high-water RSS on a CPU (reset through /proc/self/clear_refs where allowed)."""

    def __init__(self, cuda: bool):
        import torch
        self.torch, self.cuda = torch, cuda
        self.kind = "cuda max_memory_allocated" if cuda else "process VmHWM"

    def current(self) -> float:
        if self.cuda:
            return float(self.torch.cuda.memory_allocated())
        return rss_mib() * 2 ** 20

    def reset(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.kind = "process VmHWM (not resettable here: a running maximum)"

    def peak(self) -> float:
        if self.cuda:
            self.torch.cuda.synchronize()
            return float(self.torch.cuda.max_memory_allocated())
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024
        return float("nan")


def measure(args) -> dict:
    import torch

    from engine.flowrvs.memory import fit
    from engine.flowrvs.presets import random_pipeline
    from engine.flowrvs.windows import MAX_AUTO_WINDOW, MIN_WINDOW, default_overlap, plan_windows

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    probe = MemoryProbe(cuda)
    t0 = time.perf_counter()
    box = (args.height, args.width) if args.preset == "tiny" else None
    pipe = random_pipeline(args.preset, seed=0, device=args.device, dtype=args.dtype,
                           max_size=box, offload_text_encoder=True)
    load_s = time.perf_counter() - t0
    model_hw = pipe.model_size(args.height, args.width)
    elem = torch.tensor([], dtype=pipe.dtype).element_size()
    pipe.encode_prompt(EXPRESSION)          # the cache holds it from here on, as in use
    loaded = probe.current()

    sweep = []
    for n in args.sweep:
        frames = bench_clip(n, args.height, args.width)
        probe.reset()
        t1 = time.perf_counter()
        pipe(frames, EXPRESSION, window=n, overlap=0)
        seconds = time.perf_counter() - t1
        peak = probe.peak()
        sweep.append({"frames": n, "seconds": seconds, "peak_bytes": peak,
                      "extra_bytes": peak - loaded})

    where = (f"{device_name(args.device)}, {pipe.dtype}, model {model_hw[0]}x{model_hw[1]}, "
             f"bench/flowrvs_windows.py {time.strftime('%Y-%m-%d')}")
    fitted, fit_error = None, None
    try:
        fitted = fit([(s["frames"], s["extra_bytes"]) for s in sweep], model_hw, elem,
                     measured=where)
    except ValueError as error:
        fit_error = str(error)

    target = args.target_gb * GB
    if fitted is not None:
        frames = fitted.frames_for(target - loaded, model_hw, elem)
        window = (max(MIN_WINDOW, min(MAX_AUTO_WINDOW, frames)) - 1) // 4 * 4 + 1
    else:
        window = max(args.sweep)
    overlap = default_overlap(window)
    clip = bench_clip(args.frames, args.height, args.width)
    probe.reset()
    t1 = time.perf_counter()
    masks = pipe(clip, EXPRESSION, window=window, overlap=overlap)
    seconds = time.perf_counter() - t1
    peak = probe.peak()
    return {
        "preset": args.preset, "device": device_name(args.device), "torch": torch.__version__,
        "python": platform.python_version(), "dtype": str(pipe.dtype), "gpu": cuda,
        "memory": probe.kind, "size": [args.height, args.width], "model_size": list(model_hw),
        "element_size": elem, "load_s": load_s, "loaded_bytes": loaded, "sweep": sweep,
        "fit": None if fitted is None else {
            "fixed_bytes_per_pixel": fitted.fixed_bytes_per_pixel,
            "frame_bytes_per_pixel": fitted.frame_bytes_per_pixel,
            "fraction": fitted.fraction, "measured": fitted.measured,
            "bytes_per_window_frame": fitted.frame_bytes_per_pixel * model_hw[0] * model_hw[1]
            * elem,
            "code": repr(fitted)},
        "fit_error": fit_error,
        "long_clip": {"frames": args.frames, "window": window, "overlap": overlap,
                      "windows": len(plan_windows(args.frames, window, overlap)),
                      "seconds": seconds, "fps": args.frames / seconds, "peak_bytes": peak,
                      "target_bytes": target, "within_target": bool(peak <= target),
                      "mask_shape": list(masks.shape)},
    }


def report(r: dict) -> None:
    print(f"device: {r['device']}; torch {r['torch']}; {r['preset']} preset, {r['dtype']}, "
          f"frames {r['size'][0]}x{r['size'][1]} (model {r['model_size'][0]}x"
          f"{r['model_size'][1]}); memory: {r['memory']}")
    print(f"loaded: {r['loaded_bytes'] / GB:.2f} GB (load {r['load_s']:.1f} s)")
    print(f"{'window':>6} {'seconds':>8} {'peak GB':>8} {'extra GB':>9}")
    for s in r["sweep"]:
        print(f"{s['frames']:>6} {s['seconds']:>8.2f} {s['peak_bytes'] / GB:>8.2f} "
              f"{s['extra_bytes'] / GB:>9.3f}")
    if r["fit"]:
        f = r["fit"]
        print(f"fit: {f['bytes_per_window_frame'] / 2 ** 20:,.1f} MiB per window frame; "
              f"for engine/flowrvs/memory.py: {f['code']}")
    else:
        print(f"fit: none ({r['fit_error']})")
    c = r["long_clip"]
    print(f"long clip: {c['frames']} frames in {c['windows']} windows of {c['window']} "
          f"(overlap {c['overlap']}): {c['fps']:.2f} frames/s, peak {c['peak_bytes'] / GB:.2f} "
          f"GB against the {c['target_bytes'] / GB:.0f} GB target: "
          f"{'within' if c['within_target'] else 'OVER'}")


def parse_args(argv=None):
    from engine.flowrvs.windows import check_window
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--size", type=int, default=64, help="square frames (default 64)")
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--sweep", default="17,33,57,81",
                        help="window lengths to measure, 4k+1, comma-separated")
    parser.add_argument("--frames", type=int, default=300, help="the long clip's length")
    parser.add_argument("--target-gb", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.height, args.width = args.height or args.size, args.width or args.size
    try:
        args.sweep = sorted({check_window(int(n)) for n in args.sweep.split(",")})
    except ValueError as error:
        parser.error(f"--sweep: {error}")
    if len(args.sweep) < 2 or args.frames < 1:
        parser.error("--sweep needs two or more lengths and --frames at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from engine.registry import pick_device
    args.device = pick_device(args.device)
    if args.preset == "full" and not args.device.startswith("cuda"):
        print("the full preset needs a GPU (no CUDA device here)", file=sys.stderr)
        return 2
    result = measure(args)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
