"""The FlowRVS demo model: a tiny FlowRVS trained on CPU on a synthetic referring-video world.

    load_demo(device=None)            -> FlowRVSSegmenter over assets/flowrvs-demo/
    python -m engine.flowrvs.demo evaluate --seed 1000 --count 60
        held-out J&F, and J&F with the expressions shuffled across clips (the text must steer)
    python -m engine.flowrvs.demo world --seed 0 --count 2000 --out DIR
        write a MeViS-format set (engine.demo_world when present, else the built-in world)
    python -m engine.flowrvs.demo recipe
        print the training commands that produced the shipped weights

The data come from `engine.demo_world` when that package exists; otherwise from the small
built-in world below (coloured squares, circles and triangles of two sizes, moving in four
directions or still, drawn over each other; expressions by colour, shape, size, motion and
"the larger/smaller of the two ..."). Which one trained the shipped weights is recorded in
assets/flowrvs-demo/flowrvs_config.json (notes.world).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "flowrvs-demo"
SIZE = 64
NUM_FRAMES = 5

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230),
           "yellow": (230, 210, 40)}
SHAPES = ("square", "circle", "triangle")
SIZES = {"small": 6, "large": 11}
MOTIONS = {"left": (-3, 0), "right": (3, 0), "up": (0, -3), "down": (0, 3), "still": (0, 0)}


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


# ---------------------------------------------------------------------------- built-in world

def _shape_mask(shape: str, cx: float, cy: float, r: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    if shape == "square":
        return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= (r + 0.5) ** 2
    # triangle pointing up, base 2r+1, height 2r+1
    top = cy - r
    rel = (yy - top) / (2 * r + 1)
    return (yy >= top) & (yy <= cy + r) & (np.abs(xx - cx) <= rel * (r + 0.5))


def _describe(objs, k, rng) -> Optional[str]:
    """A referring expression that picks object k out of objs, or None."""
    o = objs[k]
    others = [p for i, p in enumerate(objs) if i != k]
    cands = []
    if not any(p["colour"] == o["colour"] for p in others):
        cands.append(f"the {o['colour']} object")
    if not any(p["colour"] == o["colour"] and p["shape"] == o["shape"] for p in others):
        cands.append(f"the {o['colour']} {o['shape']}")
    if not any(p["shape"] == o["shape"] for p in others):
        cands.append(f"the {o['shape']}")
    if o["motion"] != "still" and not any(p["shape"] == o["shape"] and p["motion"] == o["motion"]
                                          for p in others):
        cands.append(f"the {o['shape']} moving {o['motion']}")
    if o["motion"] == "still" and not any(p["motion"] == "still" for p in others):
        cands.append("the object that stays still")
    if o["motion"] != "still" and not any(p["motion"] == o["motion"] for p in others):
        cands.append(f"the object moving {o['motion']}")
    same = [p for p in others if p["shape"] == o["shape"]]
    if len(same) == 1 and same[0]["size"] != o["size"]:
        word = "larger" if o["size"] == "large" else "smaller"
        cands.append(f"the {word} of the two {o['shape']}s")
    if not any(p["size"] == o["size"] and p["shape"] == o["shape"] for p in others):
        cands.append(f"the {o['size']} {o['shape']}")
    if not cands:
        return None
    return cands[int(rng.integers(len(cands)))]


def world_clip(rng: np.random.Generator, size: int = SIZE, num_frames: int = NUM_FRAMES):
    """One clip: frames uint8 [T,H,W,3], per-object visible masks bool [N,T,H,W], and a list of
    (expression, [object indices])."""
    n = int(rng.integers(2, 4))
    objs = []
    for _ in range(n):
        objs.append({"colour": str(rng.choice(list(COLOURS))), "shape": str(rng.choice(SHAPES)),
                     "size": str(rng.choice(list(SIZES))), "motion": str(rng.choice(list(MOTIONS)))})
    base = rng.integers(20, 60, 3)
    noise = rng.integers(-8, 9, (size, size, 3))
    frames = np.clip(base + noise, 0, 255).astype(np.uint8)[None].repeat(num_frames, 0)
    masks = np.zeros((n, num_frames, size, size), bool)
    for o in objs:
        r = SIZES[o["size"]]
        dx, dy = MOTIONS[o["motion"]]
        span = (num_frames - 1)
        lo = r + 1
        x0 = rng.uniform(lo + max(0, -dx * span), size - lo - max(0, dx * span))
        y0 = rng.uniform(lo + max(0, -dy * span), size - lo - max(0, dy * span))
        o["track"] = [(x0 + dx * t, y0 + dy * t) for t in range(num_frames)]
    for t in range(num_frames):
        for i, o in enumerate(objs):          # later objects are drawn over earlier ones
            cx, cy = o["track"][t]
            m = _shape_mask(o["shape"], cx, cy, SIZES[o["size"]], size)
            frames[t][m] = COLOURS[o["colour"]]
            masks[:i, t] &= ~m
            masks[i, t] = m
    expressions = []
    for k in range(n):
        text = _describe(objs, k, rng)
        if text is not None and masks[k].any():
            expressions.append((text, [k]))
    return frames, masks, expressions


def vocabulary() -> list[str]:
    words = set("the object of two moving that stays still larger smaller".split())
    words.update(COLOURS, SHAPES, SIZES, MOTIONS, (s + "s" for s in SHAPES))
    return sorted(words)


def write_builtin_world(seed: int, count: int, out) -> Path:
    """`count` clips of the built-in world in MeViS format under `out`."""
    from PIL import Image
    from pycocotools import mask as mask_utils
    out = Path(out)
    rng = np.random.default_rng(seed)
    meta, mask_dict = {"videos": {}}, {}
    for v in range(count):
        vid = f"s{seed}_{v:05d}"
        frames, masks, expressions = world_clip(rng)
        folder = out / "JPEGImages" / vid
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"{t:05d}" for t in range(len(frames))]
        for name, frame in zip(names, frames):
            Image.fromarray(frame).save(folder / f"{name}.jpg", quality=95)
        for k in range(len(masks)):
            rles = []
            for m in masks[k]:
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                rles.append({"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
                            if m.any() else None)
            mask_dict[f"{vid}_{k}"] = rles
        meta["videos"][vid] = {
            "frames": names,
            "expressions": {str(e): {"exp": text, "obj_id": objs,
                                     "anno_id": [f"{vid}_{k}" for k in objs]}
                            for e, (text, objs) in enumerate(expressions)}}
    (out / "meta_expressions.json").write_text(json.dumps(meta))
    (out / "mask_dict.json").write_text(json.dumps(mask_dict))
    return out


def has_demo_world() -> bool:
    return (Path(__file__).resolve().parents[1] / "demo_world" / "__init__.py").is_file()


def write_world(seed: int, count: int, out, world: str = "auto") -> str:
    """MeViS-format data from engine.demo_world (world='demo_world', or 'auto' when it exists)
    or the built-in world; returns which one wrote it."""
    if world == "auto":
        world = "demo_world" if has_demo_world() else "builtin"
    if world == "demo_world":
        import subprocess
        subprocess.run([sys.executable, "-m", "engine.demo_world", "video", "--seed", str(seed),
                        "--count", str(count), "--out", str(out)], check=True,
                       cwd=str(Path(__file__).resolve().parents[2]))
    else:
        write_builtin_world(seed, count, out)
    return world


# ---------------------------------------------------------------------------- evaluation

def evaluate(segmenter, data_root, shuffle_seed: int = 0, limit: Optional[int] = None) -> dict:
    """J&F over every expression of a MeViS folder, and again with the expressions shuffled
    across clips (each clip gets an expression of another clip; the target stays its own)."""
    from engine.metrics import jf_per_expression, shuffled_order

    from .train import MevisData
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
            world = write_world(args.seed, args.count, root, args.world)
            print(f"world: {world}, seed {args.seed}, {args.count} clips")
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
    e.add_argument("--world", choices=("auto", "demo_world", "builtin"), default="auto")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--device", default="cpu")
    e.add_argument("--model", help="a save_pretrained folder (default assets/flowrvs-demo/)")
    e.add_argument("--steps", type=int, default=1, help="ODE steps (1: the official schedule)")
    e.add_argument("--threads", type=int, default=2)
    w = sub.add_parser("world", help="write a MeViS-format synthetic set")
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--world", choices=("auto", "demo_world", "builtin"), default="auto")
    sub.add_parser("recipe", help="print the training commands of the shipped weights")
    args = p.parse_args(argv)
    if args.cmd == "evaluate":
        return cmd_evaluate(args)
    if args.cmd == "world":
        print(write_world(args.seed, args.count, args.out, args.world))
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
