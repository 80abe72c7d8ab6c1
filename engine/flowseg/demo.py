"""The FlowSeg demo model: a tiny FlowSeg trained here, on CPU, on engine.demo_world images.

    load_demo(device=None)                 -> FlowSegSegmenter over assets/flowseg-demo/
    python -m engine.flowseg.demo evaluate [--model DIR] [--data DIR | --seed 1000 --count 100]
        held-out cIoU/gIoU, and again with the expressions shuffled across images
    python -m engine.flowseg.demo ablation --model full=DIR --model no-CR=DIR ... [--data DIR]
        the same figures for several models on the same held-out set, as a Markdown table
    python -m engine.flowseg.demo recipe [--ablation]
        the commands that trained the shipped weights (or the ablation's models)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from engine.metrics import shuffled_order  # noqa: F401  (part of this module's API)

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "flowseg-demo"
HELD_OUT_SEED, HELD_OUT_COUNT = 1000, 100

RECIPE = """\
# The shipped weights (assets/flowseg-demo/): 2 CPU cores, about 1 s per step of 16 samples,
# about 65 minutes of wall time. Held-out cIoU 0.396 (600 expressions), 0.160 with the expressions shuffled.
# data: 8,000 training images (seed 0) and 100 held-out images (seed 1000, never trained on)
python -m engine.demo_world image --seed 0 --count 8000 --out data/fs-train
python -m engine.demo_world image --seed 1000 --count 100 --out data/fs-heldout --split val
# stage 1, segmentor: category name -> all its instances
python -m engine.flowseg.train --data data/fs-train --out runs/fs1 --preset demo --stage segmentor \\
    {common} --steps {s1} --lr 3e-4 --warmup 50
# stage 2, alignment: projectors only, referring expressions
python -m engine.flowseg.train --data data/fs-train --out runs/fs2 --init runs/fs1/pipeline \\
    --stage alignment {common} --steps {s2} --lr 3e-4 --warmup 20
# stage 3, joint: everything, referring + 20% generic samples. Planned for 2400 steps, stretched
# to 4000 at step 500, stopped at 2500 (held-out cIoU had been flat since about step 1500)
python -m engine.flowseg.train --data data/fs-train --out runs/fs3 --init runs/fs2/pipeline \\
    --stage joint {common} --steps 2400 --stop-at 500 --lr 3e-4 --warmup 100
python -m engine.flowseg.train --data data/fs-train --out runs/fs3 --resume --steps 4000 --stop-at 2500
python -m engine.flowseg.demo evaluate --model runs/fs3/pipeline --data data/fs-heldout --split val
mkdir -p assets/flowseg-demo && cp -r runs/fs3/pipeline/. assets/flowseg-demo/
"""
RECIPE_STEPS = {"s1": 500, "s2": 150,
                "common": "--batch-size 16 --points 1024 --threads 2 --seed 0"}
# The ablation: four variants trained from scratch with one shorter, identical schedule
# (CPU time), then measured on the same held-out set.
ABLATION = {"full": [], "no-CR": ["condition_refinement=off"],
            "no-SR-CR": ["semantic_refinement=off", "condition_refinement=off"],
            "no-BAR": ["boundary_refinement=off"]}
ABLATION_RECIPE = """\
python -m engine.flowseg.train --data data/fs-train --out runs/ab-{name}-1 --preset demo \\
    --stage segmentor {switches}{common} --steps {s1} --lr 3e-4 --warmup 50
python -m engine.flowseg.train --data data/fs-train --out runs/ab-{name}-3 \\
    --init runs/ab-{name}-1/pipeline --stage joint {common} --steps {s3} --lr 3e-4 --warmup 50
"""
ABLATION_STEPS = {"s1": 100, "s3": 400}


def ablation_recipe() -> str:
    common = RECIPE_STEPS["common"]
    runs = "".join(ABLATION_RECIPE.format(
        name=name, common=common, switches="".join(f"--switch {s} " for s in switches),
        **ABLATION_STEPS) for name, switches in ABLATION.items())
    models = " ".join(f"--model {n}=runs/ab-{n}-3/pipeline" for n in ABLATION)
    return (f"{runs}python -m engine.flowseg.demo ablation {models} \\\n"
            "    --data data/fs-heldout --split val\n")


def load_demo(device=None, *, model_dir=None, k: int = 5):
    """A FlowSegSegmenter over the demo weights (CPU is fine); model_dir: another
    save_pretrained folder (a training run's pipeline/)."""
    from engine.registry import EngineNotConfigured

    from .segmenter import load
    folder = Path(model_dir) if model_dir is not None else DEMO_DIR
    if not (folder / "flowseg_config.json").is_file():
        raise EngineNotConfigured(
            f"the FlowSeg demo weights are missing from {folder}; train them with the commands "
            "of `python -m engine.flowseg.demo recipe`, or use the 'flowseg' engine with your "
            "own weights")
    return load(device=device, model_dir=folder, k=k)


# ---------------------------------------------------------------------------- evaluation

def evaluate(pipe, data, limit: Optional[int] = None, shuffle_seed: int = 0) -> dict:
    """cIoU / gIoU over the referring samples of a RefCocoData, and with the expressions
    shuffled across images (each image gets another image's expression; the target stays
    its own). Keyed by ref/sentence id, never by text."""
    from engine.metrics import ciou, giou
    samples = data.referring[:limit] if limit else data.referring
    order = shuffled_order([s.image_id for s in samples], shuffle_seed)
    preds, shuffled, gts = {}, {}, {}
    for i, s in enumerate(samples):
        image = data.image(s.image_id)
        gts[s.key] = data.union(s)
        preds[s.key] = pipe(image, s.text)
        shuffled[s.key] = pipe(image, samples[order[i]].text)
    result = {"expressions": len(samples), "images": len({s.image_id for s in samples}),
              "cIoU": ciou(preds, gts), "gIoU": giou(preds, gts),
              "shuffled_cIoU": ciou(shuffled, gts), "shuffled_gIoU": giou(shuffled, gts)}
    kinds = expression_kinds(data)
    if kinds:
        by_kind = {}
        for s in samples:
            by_kind.setdefault(kinds.get((s.image_id, s.text), "?"), []).append(s.key)
        result["cIoU_by_kind"] = {
            k: {"n": len(keys), "cIoU": ciou({q: preds[q] for q in keys}, {q: gts[q] for q in keys})}
            for k, keys in sorted(by_kind.items())}
    return result


def expression_kinds(data) -> dict:
    """{(image_id, text): kind} from the demo world's world.json, when the folder has one."""
    path = data.root / "world.json"
    if not path.is_file():
        return {}
    scenes = json.loads(path.read_text()).get("scenes", [])
    return {(s["image_id"], e["exp"]): e["kind"] for s in scenes for e in s.get("expressions", [])
            if "image_id" in s and "exp" in e and "kind" in e}


def _held_out(args):
    """(RefCocoData, description) from --data, or a held-out world written to a temp dir."""
    from .data import RefCocoData
    if args.data:
        return RefCocoData(args.data, split=args.split), f"{args.data} (split {args.split})"
    from engine.demo_world import write_image_dataset
    tmp = Path(tempfile.mkdtemp(prefix="flowseg-heldout-")) / "data"
    write_image_dataset(tmp, args.seed, args.count, split="val")
    return RefCocoData(tmp, split="val"), f"demo world seed {args.seed}, {args.count} images"


def _pipe(model_dir, device):
    from .pipeline import FlowSegPipeline
    return FlowSegPipeline.from_pretrained(model_dir, device=device)


def _row(name, r) -> str:
    drop = r["cIoU"] - r["shuffled_cIoU"]
    return (f"| {name} | {r['cIoU']:.3f} | {r['gIoU']:.3f} | {r['shuffled_cIoU']:.3f} | "
            f"{drop:.3f} |")


TABLE_HEAD = ("| model | cIoU | gIoU | cIoU, expressions shuffled | drop |\n"
              "|---|---|---|---|---|")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.flowseg.demo")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="held-out cIoU/gIoU, plain and shuffled")
    ab = sub.add_parser("ablation", help="several models on one held-out set")
    rc = sub.add_parser("recipe", help="print the commands that trained the shipped weights")
    rc.add_argument("--ablation", action="store_true", help="the ablation's commands instead")
    ev.add_argument("--model", default=str(DEMO_DIR), help="save_pretrained folder")
    ab.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    for q in (ev, ab):
        q.add_argument("--data", help="RefCOCO-format folder (default: a fresh held-out world)")
        q.add_argument("--split", default="val")
        q.add_argument("--seed", type=int, default=HELD_OUT_SEED)
        q.add_argument("--count", type=int, default=HELD_OUT_COUNT)
        q.add_argument("--limit", type=int, help="first N expressions only")
        q.add_argument("--device", default=None)
        q.add_argument("--threads", type=int, default=None)
        q.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    if args.command == "recipe":
        print(ablation_recipe() if args.ablation else RECIPE.format(**RECIPE_STEPS), end="")
        return 0
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        data, where = _held_out(args)
        models = [("model", args.model)] if args.command == "evaluate" else \
            [tuple(m.split("=", 1)) if "=" in m else (Path(m).name, m) for m in args.model]
        results = {}
        t0 = time.time()
        for name, folder in models:
            results[name] = evaluate(_pipe(folder, args.device), data, limit=args.limit)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    first = next(iter(results.values()))
    print(f"held-out set: {where}: {first['expressions']} expressions on {first['images']} "
          f"images ({time.time() - t0:.0f} s)")
    if args.command == "evaluate":
        r = first
        print(f"cIoU {r['cIoU']:.3f}  gIoU {r['gIoU']:.3f}  |  expressions shuffled: cIoU "
              f"{r['shuffled_cIoU']:.3f}  gIoU {r['shuffled_gIoU']:.3f}  (drop "
              f"{r['cIoU'] - r['shuffled_cIoU']:.3f})")
        for kind, k in r.get("cIoU_by_kind", {}).items():
            print(f"  {kind:22s} {k['n']:4d} expressions  cIoU {k['cIoU']:.3f}")
    else:
        print(TABLE_HEAD)
        for name, r in results.items():
            print(_row(name, r))
    if args.json:
        Path(args.json).write_text(json.dumps({"held_out": where, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
