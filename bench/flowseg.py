#!/usr/bin/env python3
"""FlowSeg benchmark: latency per image, peak memory, and what BSF and BAR cost over the
plain Mask2Former decoder. Random weights (nothing is downloaded); figures depend only on
the sizes.

    python bench/flowseg.py                          # tiny and small presets on this machine
    python bench/flowseg.py --preset small --runs 10 --threads 2
    python bench/flowseg.py --full                   # paper sizes (SigLIP-so400m, SAM ViT-L,
                                                     # Qwen3-4B, 200 queries): needs a GPU

Each preset runs in its own subprocess so that its peak memory is its own (CPU: peak RSS of
the process, and the part above the RSS before the model was built; GPU:
torch.cuda.max_memory_allocated). Latency is the median over --runs calls of pipe(image,
expression) on a 480x640 image after --warmup calls.

Decoder variants (same weights for the parts they share, swapped into the same pipeline):
  plain      Mask2Former decoder, <SEG> added to the queries, cosine selection (X-SAM)
  +SR        semantic cross-attention and the sigmoid gate in every layer
  +SR+CR     full Bidirectional Semantic Flow (conditions refined by the queries)
  +BAR       BSF plus Boundary-Aware Refinement of the top-5 masks (= the FlowSeg model)
"decoder ms" times the decoder (and BAR) alone on fixed features, best of 4x--runs calls with
the variants taking turns: the cost BSF and BAR add. "end-to-end ms" is the median of --runs
calls of the whole pipeline with that decoder swapped in (noisier: it includes the towers).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXPRESSION = "the blue triangle left of the red circle"
IMAGE_SIZE = (480, 640)
VARIANTS = {
    "plain": dict(semantic_refinement=False, condition_refinement=False,
                  boundary_refinement=False),
    "+SR": dict(semantic_refinement=True, condition_refinement=False, boundary_refinement=False),
    "+SR+CR": dict(semantic_refinement=True, condition_refinement=True, boundary_refinement=False),
    "+BAR": dict(semantic_refinement=True, condition_refinement=True, boundary_refinement=True),
}


def test_image(seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    h, w = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3))
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(20, 200)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * \
            rng.uniform(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_name(device: str) -> str:
    import torch
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"CPU {cpu}, {len(os.sched_getaffinity(0))} usable cores"


def timed(fn, runs: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def interleaved(fn, names, runs: int, warmup: int, sync) -> dict:
    """fn(name) timed `runs` times per name, the names taking turns."""
    for _ in range(warmup):
        for name in names:
            fn(name)
    times = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            sync()
            t0 = time.perf_counter()
            fn(name)
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def worker(args) -> dict:
    """One preset in this process; prints a JSON line."""
    import torch

    from engine.flowseg.decoder import FlowSegDecoder, count_parameters
    from engine.flowseg.images import sam_pixels, siglip_pixels
    from engine.flowseg.presets import random_pipeline
    from engine.flowseg.refine import BoundaryAwareRefinement
    from engine.flowseg.text import encode_prompt

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    before = rss_mib()
    pipe = random_pipeline(args.preset, seed=0, device=device, dtype=args.dtype)
    model = pipe.model
    image = test_image()
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # end to end, the full FlowSeg model
    e2e = timed(lambda: pipe(image, EXPRESSION), args.runs, args.warmup, sync)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else peak_rss_mib()

    # fixed decoder inputs for the decoder-only timings
    with torch.inference_mode():
        ids = torch.tensor([encode_prompt(pipe.tokenizer, pipe.config, EXPRESSION)],
                           device=device)
        sig = siglip_pixels(image, model.siglip.config.image_size, device)
        sam, _ = sam_pixels(image, model.sam.config.image_size, device)
        tokens, maps = model.encode_images(sig, sam)
        hidden, tok_ids, _ = model.run_llm(ids, None, tokens)
        cond, pad, seg = model.conditions_from(hidden, tok_ids)
        multi, mask_features = model.pixel_features(maps)

    full_decoder, full_bar = model.decoder, model.bar
    state = {**{f"decoder.{k}": v for k, v in full_decoder.state_dict().items()},
             **{f"bar.{k}": v for k, v in full_bar.state_dict().items()}}
    variants = {}
    for name, switches in VARIANTS.items():
        cfg = pipe.config.replace(**switches)
        with torch.device(device):
            decoder = FlowSegDecoder(cfg)
            bar = BoundaryAwareRefinement(cfg.mask_feature_size, cfg.bar_comp_channels,
                                          cfg.bar_hidden, cfg.bar_eps, cfg.bar_kernel) \
                if cfg.boundary_refinement else None
        decoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("decoder.")
                                 and k[8:] in decoder.state_dict()})
        if bar is not None:
            bar.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("bar.")})
            bar.to(dtype=model.dtype).eval().requires_grad_(False)
        decoder.to(dtype=model.dtype).eval().requires_grad_(False)
        variants[name] = (cfg, decoder, bar)

    def run_decoder(name):
        cfg, decoder, bar = variants[name]
        with torch.inference_mode():
            out = decoder(multi, mask_features, cond, pad, seg)
            top = out.final.scores[0].topk(min(5, cfg.num_queries)).indices
            if bar is not None:
                bar(out.final.mask_logits[:, top], mask_features)

    def run_pipeline(name):
        model.decoder, model.bar = variants[name][1], variants[name][2]
        try:
            pipe(image, EXPRESSION)
        finally:
            model.decoder, model.bar = full_decoder, full_bar

    # Round-robin over the variants so that a change in machine load hits all of them alike.
    dec = interleaved(run_decoder, list(variants), args.runs * 4, args.warmup, sync)
    e2e_v = interleaved(run_pipeline, list(variants), args.runs, 1, sync)
    rows = {name: {"params": count_parameters(variants[name][1]) +
                   count_parameters(variants[name][2]),
                   "decoder_ms": min(dec[name]) * 1e3,   # best of N: least disturbed by load
                   "e2e_ms": statistics.median(e2e_v[name]) * 1e3} for name in variants}

    return {
        "preset": args.preset, "device": device_name(device), "dtype": str(model.dtype),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "own_params": sum(count_parameters(m) for m in model.new_parts().values()),
        "sam_input": model.sam.config.image_size, "siglip_input": model.siglip.config.image_size,
        "queries": pipe.config.num_queries, "layers": pipe.config.decoder_layers,
        "llm_tokens": int(hidden.shape[1]), "mask_grid": list(mask_features.shape[-2:]),
        "e2e_ms": statistics.median(e2e) * 1e3,
        "e2e_p90_ms": sorted(e2e)[max(0, int(round(0.9 * len(e2e))) - 1)] * 1e3,
        "peak_mib": peak, "rss_before_mib": before, "gpu": cuda, "variants": rows,
    }


def report(r: dict) -> None:
    mem = (f"peak GPU memory {r['peak_mib']:,.0f} MiB" if r["gpu"] else
           f"peak RSS {r['peak_mib']:,.0f} MiB ({r['peak_mib'] - r['rss_before_mib']:,.0f} MiB "
           f"above the {r['rss_before_mib']:,.0f} MiB before the model was built)")
    print(f"\n[{r['preset']}] {r['params'] / 1e6:,.2f}M parameters ({r['own_params'] / 1e6:,.2f}M "
          f"FlowSeg's own), {r['dtype']}, {r['threads']} threads; SAM {r['sam_input']}px, "
          f"SigLIP {r['siglip_input']}px, {r['llm_tokens']} LLM tokens, {r['queries']} queries "
          f"x {r['layers']} layers, masks {r['mask_grid'][0]}x{r['mask_grid'][1]}")
    print(f"[{r['preset']}] latency per {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} image: median "
          f"{r['e2e_ms']:,.1f} ms, p90 {r['e2e_p90_ms']:,.1f} ms; {mem}")
    base = r["variants"]["plain"]
    print(f"[{r['preset']}] {'decoder':<8} {'params':>12} {'+params':>11} {'decoder ms':>11} "
          f"{'+ms':>8} {'end-to-end ms':>14} {'+ms':>8}")
    for name, v in r["variants"].items():
        print(f"[{r['preset']}] {name:<8} {v['params']:>12,} {v['params'] - base['params']:>+11,} "
              f"{v['decoder_ms']:>11.2f} {v['decoder_ms'] - base['decoder_ms']:>+8.2f} "
              f"{v['e2e_ms']:>14.1f} {v['e2e_ms'] - base['e2e_ms']:>+8.1f}")
    full = r["variants"]["+BAR"]
    print(f"[{r['preset']}] BSF+BAR over plain: {full['params'] - base['params']:+,} parameters "
          f"({(full['params'] - base['params']) / r['params'] * 100:.2f}% of the model), "
          f"{full['decoder_ms'] - base['decoder_ms']:+.2f} ms in the decoder "
          f"({(full['decoder_ms'] - base['decoder_ms']) / r['e2e_ms'] * 100:+.1f}% of end to end)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", action="append", choices=["tiny", "small", "full"],
                        help="repeatable; default: tiny and small (or full with --full)")
    parser.add_argument("--full", action="store_true",
                        help="the paper's sizes with random weights (needs a GPU, ~10 GiB bf16)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="let --full run on a CPU (slow; ~20 GiB of RAM in fp32)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", action="store_true", help="also print each result as JSON")
    parser.add_argument("--json-out", type=Path, default=None, metavar="PATH",
                        help="also write every result to PATH as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    from engine.registry import pick_device
    args.device = pick_device(args.device)
    if args.worker:
        args.preset = args.preset[0]
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    presets = args.preset or (["full"] if args.full else ["tiny", "small"])
    if "full" in presets and not args.device.startswith("cuda") and not args.allow_cpu:
        print("the full-size config needs a GPU (no CUDA device here); pass --allow-cpu to run "
              "it on the CPU anyway", file=sys.stderr)
        return 2
    print(f"device: {device_name(args.device)}; torch {torch.__version__}, python "
          f"{platform.python_version()}")
    results = []
    for preset in presets:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", preset,
               "--device", args.device, "--runs", str(args.runs), "--warmup", str(args.warmup),
               "--threads", str(args.threads)] + (["--dtype", args.dtype] if args.dtype else [])
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            print(f"[{preset}] failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            return 1
        result = json.loads(lines[-1][len("RESULT "):])
        results.append(result)
        report(result)
        if args.json:
            print(json.dumps(result))
    if args.json_out:
        args.json_out.write_text(json.dumps({"device": device_name(args.device),
                                             "torch": torch.__version__,
                                             "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
