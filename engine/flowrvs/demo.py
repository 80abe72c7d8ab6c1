"""The FlowRVS demo model: a tiny FlowRVS trained on CPU on a synthetic referring-video world.

    load_demo(device=None)            -> FlowRVSSegmenter over assets/flowrvs-demo/
    python -m engine.flowrvs.demo evaluate --seed 1000 --count 60
        held-out J&F, and J&F with the expressions shuffled across clips (the text must steer)
    python -m engine.flowrvs.demo world --seed 0 --count 2000 --out DIR
        write a MeViS-format set of engine.demo_world's video world
    python -m engine.flowrvs.demo recipe
        print the training commands that produced the shipped weights

The data come from `engine.demo_world` (coloured shapes of two sizes moving over a textured
background; expressions by colour, shape, size, motion, position and relation).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "flowrvs-demo"


# ---------------------------------------------------------------------------- the segmenter

def load_demo(device=None, *, num_steps: int = 1, schedule: str = "official", model_dir=None):
    """A FlowRVSSegmenter over the demo weights in assets/flowrvs-demo/ (CPU is fine);
    model_dir: another save_pretrained folder (a training run's pipeline/)."""
    from engine.registry import EngineNotConfigured

    from .pipeline import FlowRVSPipeline
    from .segmenter import FlowRVSSegmenter
    folder = Path(model_dir) if model_dir is not None else DEMO_DIR
    if not (folder / "flowrvs_config.json").is_file():
        raise EngineNotConfigured(
            f"the FlowRVS demo weights are missing from {folder}; train them with the "
            "commands of `python -m engine.flowrvs.demo recipe`, or use the 'flowrvs' engine "
            "with the official weights")
    pipe = FlowRVSPipeline.from_pretrained(folder, device=device)
    return FlowRVSSegmenter(pipe, num_steps=num_steps, schedule=schedule)


# ---------------------------------------------------------------------------- data

def write_world(seed: int, count: int, out) -> dict:
    """`count` clips of engine.demo_world's video world (9 frames, 64 px: what the shipped
    weights trained on) in MeViS format under `out`; returns the writer's summary."""
    from engine.demo_world import write_video_dataset
    return write_video_dataset(out, seed, count)


# ---------------------------------------------------------------------------- evaluation

def evaluate(segmenter, data_root, shuffle_seed: int = 0, limit: Optional[int] = None) -> dict:
    """J&F over every expression of a MeViS folder, and again with the expressions shuffled
    across clips (each clip gets an expression of another clip; the target stays its own)."""
    from engine.metrics import jf_per_expression, shuffled_order

    from .data import MevisData
    data = MevisData(data_root, num_frames=1)
    samples = data.samples[:limit] if limit else data.samples
    order = shuffled_order([s.vid for s in samples], shuffle_seed)  # no expression on its own clip
    preds, shuffled, gts = {}, {}, {}
    for i, s in enumerate(samples):
        key = f"{s.vid}/{s.eid}"
        video = data.video(s.vid)
        gts[key] = data.target(s, video.shape[:3])
        preds[key] = segmenter.segment_video(video, s.expression)
        shuffled[key] = segmenter.segment_video(video, samples[order[i]].expression)
    held = jf_per_expression(preds, gts)
    shuf = jf_per_expression(shuffled, gts)
    return {"expressions": len(samples), "held_out": held, "shuffled": shuf}


def _jf(result) -> float:
    if isinstance(result, dict):
        result = result.get("overall", result)
        for k in ("JF", "J&F", "jf"):
            if k in result:
                return float(result[k])
    return float(result)


def cmd_evaluate(args) -> int:
    import torch
    torch.set_num_threads(args.threads)
    seg = load_demo(args.device, num_steps=args.steps,
                    schedule="official" if args.steps == 1 else "linear", model_dir=args.model)
    with tempfile.TemporaryDirectory(prefix="flowrvs-demo-eval-") as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        if not args.data:
            write_world(args.seed, args.count, root)
            print(f"world: engine.demo_world, seed {args.seed}, {args.count} clips")
        t0 = time.time()
        r = evaluate(seg, root, limit=args.limit)
    held, shuf = _jf(r["held_out"]), _jf(r["shuffled"])
    print(f"expressions: {r['expressions']}")
    print(f"held-out J&F: {held:.3f}")
    print(f"shuffled-expression J&F: {shuf:.3f} (drop {held - shuf:.3f})")
    print(f"time: {time.time() - t0:.0f}s")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.flowrvs.demo")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evaluate", help="held-out and shuffled-expression J&F of the demo model")
    e.add_argument("--seed", type=int, default=1000)
    e.add_argument("--count", type=int, default=20, help="clips (about 8 expressions each)")
    e.add_argument("--data", help="evaluate on this MeViS folder instead of generating one")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--device", default="cpu")
    e.add_argument("--model", help="a save_pretrained folder (default assets/flowrvs-demo/)")
    e.add_argument("--steps", type=int, default=1, help="ODE steps (1: the official schedule)")
    e.add_argument("--threads", type=int, default=2)
    w = sub.add_parser("world", help="write a MeViS-format synthetic set")
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--out", required=True)
    sub.add_parser("recipe", help="print the training commands of the shipped weights")
    args = p.parse_args(argv)
    if args.cmd == "evaluate":
        return cmd_evaluate(args)
    if args.cmd == "world":
        summary = write_world(args.seed, args.count, args.out)
        print(f"wrote {summary['videos']} videos, {summary['expressions']} expressions to "
              f"{args.out}")
        return 0
    print(RECIPE)
    return 0


RECIPE = """\
# The shipped weights (assets/flowrvs-demo/): CPU, one thread per process, about 60 minutes\n# of wall time. Held-out J&F 0.123, shuffled 0.073: far below the 0.70 target.
python -m engine.demo_world video --seed 0 --count 1200 --out data/dw_train        # 9 frames, 64 px
# Stage A: the tiny VAE from scratch (RGB + mask head; frames and masks, 5-frame windows)
python -m engine.flowrvs.train --data data/dw_train --tiny --stage vae --out runs/demo_a \\
    --num-frames 5 --batch-size 4 --lr 2e-3 --ema-decay 0 --max-steps 500 --threads 1
# Stage C (may run beside stage B: the encoder is frozen, so B's latents stay valid):
# the release's decoder tuning, 1-channel mask decoder on mask latents
python -m engine.flowrvs.train --data data/dw_train --tiny --stage vae \\
    --vae-from runs/demo_a/pipeline --no-train-vae-encoder --num-frames 9 --batch-size 4 \\
    --lr 1e-3 --ema-decay 0 --max-steps 550 --threads 1 --out runs/demo_c
# Stage B: the DiT flow (and the tiny UMT5) with BBS p=0.5, SPA, DVI, EMA; VAE frozen
python -m engine.flowrvs.train --data data/dw_train --tiny --stage flow \\
    --vae-from runs/demo_a/pipeline --demo-world-vocabulary --num-frames 9 \\
    --max-videos 700 --precompute-latents --batch-size 16 --lr 1e-3 --ema-decay 0.998 \\
    --max-steps 3000 --threads 1 --out runs/demo_b
# ... then, from B's step-3000 checkpoint, most of the batch at the trajectory start (with DVI
# the t<1000 targets are solvable without the text, so p=0.5 spent half of each batch there)
mkdir -p runs/demo_b2 && cp runs/demo_b/checkpoint.pt runs/demo_b2/
python -m engine.flowrvs.train --data data/dw_train --tiny --stage flow \\
    --vae-from runs/demo_a/pipeline --demo-world-vocabulary --num-frames 9 \\
    --max-videos 250 --precompute-latents --batch-size 16 --lr 1e-3 --ema-decay 0.998 \\
    --bbs-p 0.9 --max-steps 9500 --threads 1 --out runs/demo_b2 --resume
mkdir -p assets/flowrvs-demo && cp -r runs/demo_b2/pipeline/. assets/flowrvs-demo/
rm -r assets/flowrvs-demo/vae && cp -r runs/demo_c/pipeline/vae assets/flowrvs-demo/vae
python -m engine.flowrvs.demo evaluate --seed 1000 --count 20
"""

if __name__ == "__main__":
    sys.exit(main())
