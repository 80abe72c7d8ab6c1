"""Train FlowSeg on RefCOCO-format data (the studio's RefCOCO export, or engine.demo_world).

    python -m engine.flowseg.train --data DIR --out RUN --preset demo --stage segmentor --steps 2000
    python -m engine.flowseg.train --data DIR --out RUN2 --init RUN/pipeline --stage joint --steps 4000
    python -m engine.flowseg.train --data DIR --out RUN2 --resume          # carry on where RUN2 stopped

Stages (the paper trains in three; each stage is one run, the next starts with --init):
  segmentor  generic samples (a category name -> all its instances); trains SAM, the connector,
             the pixel decoder, the BSF decoder, BAR and the condition projector φ_llm.
  alignment  referring samples; trains the projectors (SigLIP, SAM tokens, φ_llm) only.
  joint      referring plus a share of generic samples (--generic-share); trains everything.
Loss: losses.FlowSegCriterion (Hungarian matching, class 2 / mask 5 / dice 5 on sampled points,
every layer supervised, the last after BAR) + the LM loss on the answer.

Weights come from --preset (random, the word-level tokenizer grown with the data's words),
--init (a save_pretrained folder) or --components SIGLIP SAM LLM (the public base models).
RUN/pipeline is a save_pretrained folder, rewritten at every --save-every and at the end;
RUN/trainer.pt holds the optimizer, step and random states, so --resume continues exactly
(batches are drawn from (seed, step), not from a stream).
"""
from __future__ import annotations

import argparse
import logging
import sys

from .trainer import STAGES, TRAIN_PRESETS, TrainConfig, run


def parser() -> argparse.ArgumentParser:
    """The CLI. Every dest is a TrainConfig field; the defaults live in TrainConfig only (an
    option not given stays out of the namespace), so a new option is one field + one line."""
    p = argparse.ArgumentParser(prog="python -m engine.flowseg.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--data", required=True, help="RefCOCO-format folder")
    p.add_argument("--images", help="folder of the image files (default DATA/images or DATA)")
    p.add_argument("--split", help="refs split to train on (default train)")
    p.add_argument("--out", required=True, help="run folder (pipeline/, trainer.pt, log.jsonl)")
    src = p.add_argument_group("weights (one of)")
    src.add_argument("--preset", choices=TRAIN_PRESETS, help="random weights")
    src.add_argument("--init", help="save_pretrained folder to start from")
    src.add_argument("--components", nargs=3, metavar=("SIGLIP", "SAM", "LLM"),
                     help="public base models (folders or cached repo ids)")
    src.add_argument("--resume", action="store_true", help="continue the run in --out")
    src.add_argument("--switch", action="append", metavar="NAME=on|off",
                     help="ablation switch for --preset/--components (repeatable)")
    tr = p.add_argument_group("training")
    tr.add_argument("--stage", choices=tuple(STAGES))
    tr.add_argument("--steps", type=int, help="total steps (sets the lr schedule)")
    tr.add_argument("--stop-at", type=int,
                    help="stop (and save) after this step, leaving the schedule as --steps sets it")
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float, help="peak learning rate (paper: 4e-5)")
    tr.add_argument("--min-lr-ratio", type=float, help="cosine floor, x lr")
    tr.add_argument("--warmup", type=int)
    tr.add_argument("--weight-decay", type=float)
    tr.add_argument("--grad-clip", type=float)
    tr.add_argument("--points", type=int, help="sampled points per mask")
    tr.add_argument("--lm-weight", type=float, help="0 turns the LM loss off")
    tr.add_argument("--generic-share", type=float,
                    help="joint stage: share of generic (category) samples")
    tr.add_argument("--query-position", action="store_true",
                    help="give the queries their mask's position (config.query_position; "
                         "with --init it is added to the loaded model, starting as a no-op)")
    tr.add_argument("--time-limit", type=float, metavar="SECONDS",
                    help="stop (and save) after the first step past this many seconds since "
                         "the run started (loading included)")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--save-every", type=int)
    tr.add_argument("--log-every", type=int)
    tr.add_argument("--device", help="cuda, cpu (default: cuda when present)")
    tr.add_argument("--threads", type=int, help="CPU threads for torch")
    return p


def parse_args(argv=None) -> TrainConfig:
    p = parser()
    try:
        return TrainConfig(**vars(p.parse_args(argv)))
    except ValueError as e:
        p.error(str(e))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(parse_args(argv))
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
