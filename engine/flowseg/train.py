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
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import RefCocoData, Sample
from .images import resized_size, sam_pixels, siglip_pixels
from .losses import FlowSegCriterion
from .text import encode_prompt

STAGES = {
    "segmentor": ("sam", "connector", "pixel_decoder", "decoder", "bar", "text_proj"),
    "alignment": ("siglip_proj", "sam_proj", "text_proj"),
    "joint": None,                                   # every parameter
}
PIPELINE_DIR, TRAINER_STATE = "pipeline", "trainer.pt"


# ---------------------------------------------------------------------------- batches

def answer_labels(ids: torch.Tensor, answer: list[int]) -> torch.Tensor:
    """-100 everywhere but on the last occurrence of the answer's tokens in each row."""
    labels = torch.full_like(ids, -100)
    n = len(answer)
    want = torch.tensor(answer, device=ids.device)
    for i, row in enumerate(ids):
        for start in range(len(row) - n, -1, -1):
            if torch.equal(row[start:start + n], want):
                labels[i, start:start + n] = want
                break
        else:
            raise ValueError(f"row {i} does not contain the answer tokens {answer}")
    return labels


def target_on_sam_grid(masks: np.ndarray, size: int) -> torch.Tensor:
    """bool [n, H, W] -> float [n, size, size]: resized like the image (longest side to
    `size`, area-averaged) and zero-padded bottom/right, the frame the logits live in."""
    h, w = resized_size(masks.shape[1], masks.shape[2], size)
    x = torch.from_numpy(masks.astype(np.float32))[None]
    x = F.interpolate(x, size=(h, w), mode="area" if h <= masks.shape[1] else "bilinear")[0]
    return F.pad(x, (0, size - w, 0, size - h))


class Batcher:
    """Samples -> model inputs. Prompts are right-padded (attention 0 on padding)."""

    def __init__(self, data: RefCocoData, pipe, device):
        self.data, self.pipe, self.device = data, pipe, device
        self.answer = pipe.tokenizer(pipe.config.answer, add_special_tokens=False)["input_ids"]
        self.pad_id = pipe.tokenizer.pad_token_id or 0

    def __call__(self, samples: list[Sample]) -> dict:
        model, cfg = self.pipe.model, self.pipe.config
        sig_size, sam_size = model.siglip.config.image_size, model.sam.config.image_size
        sig, sam, targets, rows = [], [], [], []
        for s in samples:
            image = self.data.image(s.image_id)
            sig.append(siglip_pixels(image, sig_size))
            sam.append(sam_pixels(image, sam_size)[0])
            targets.append(target_on_sam_grid(self.data.target(s), sam_size).to(self.device))
            rows.append(encode_prompt(self.pipe.tokenizer, cfg, s.text))
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            attention[i, :len(r)] = 1
        return {"siglip": torch.cat(sig).to(self.device), "sam": torch.cat(sam).to(self.device),
                "ids": ids.to(self.device), "attention": attention.to(self.device),
                "targets": targets}


# ---------------------------------------------------------------------------- the loop

class Trainer:
    def __init__(self, pipe, data: RefCocoData, args):
        self.pipe, self.data, self.args = pipe, data, args
        self.model = pipe.model
        self.device = pipe.device
        self.batcher = Batcher(data, pipe, self.device)
        self.criterion = FlowSegCriterion(num_points=args.points, lm_weight=args.lm_weight)
        self.params = trainable(self.model, args.stage)
        self.optimizer = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=args.weight_decay)
        self.step = 0
        self.history: list[dict] = []

    # batches are a function of (seed, step): resuming needs no data-loader state
    def samples(self, step: int) -> list[Sample]:
        rng = np.random.default_rng((self.args.seed, step))
        a = self.args
        if a.stage == "segmentor":
            pool = [self.data.generic]
        elif a.stage == "alignment" or not self.data.generic or a.generic_share <= 0:
            pool = [self.data.referring]
        else:
            pool = [self.data.referring, self.data.generic]
        out = []
        for _ in range(a.batch_size):
            src = pool[1] if len(pool) > 1 and rng.random() < a.generic_share else pool[0]
            out.append(src[int(rng.integers(len(src)))])
        return out

    def lr_at(self, step: int) -> float:
        a = self.args
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        progress = (step - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (a.min_lr_ratio + (1 - a.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def loss(self, batch: dict):
        model = self.model
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" \
            else torch.autocast("cpu", enabled=False)
        with autocast:
            tokens, maps = model.encode_images(batch["siglip"], batch["sam"])
            hidden, ids, _ = model.run_llm(batch["ids"], batch["attention"], tokens)
            conditions, pad, seg = model.conditions_from(hidden, ids)
            multi_scale, mask_features = model.pixel_features(maps)
            decoded = model.decoder(multi_scale, mask_features, conditions.to(mask_features.dtype),
                                    pad, seg.to(mask_features.dtype))
            final = decoded.final
            refined, _ = model.refine(final.mask_logits, mask_features)
            layers = [(p.mask_logits, p.class_logits) for p in decoded.predictions[:-1]]
            layers.append((refined, final.class_logits))
            lm_logits = lm_labels = None
            if self.args.lm_weight:
                lm_logits = model.llm.lm_head(hidden)
                lm_labels = answer_labels(ids, self.batcher.answer)
        return self.criterion(layers, batch["targets"], lm_logits, lm_labels)

    def train_step(self) -> dict:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        batch = self.batcher(self.samples(self.step))
        loss, parts = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, self.args.grad_clip))
        self.optimizer.step()
        self.step += 1
        return parts

    # ------------------------------------------------------------------ checkpoints

    def save(self, out: Path) -> None:
        self.model.eval()
        self.pipe.save_pretrained(out / PIPELINE_DIR)
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "args": vars(self.args),
                 "history": self.history}
        tmp = out / (TRAINER_STATE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(out / TRAINER_STATE)     # a crash mid-save keeps the previous state

    def load(self, out: Path) -> None:
        state = torch.load(out / TRAINER_STATE, map_location=self.device, weights_only=False)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state.get("history", []))


def trainable(model, stage: str) -> list:
    parts = STAGES[stage]
    model.requires_grad_(parts is None)
    if parts is not None:
        for name in parts:
            module = getattr(model, name, None)
            if module is not None:
                module.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"stage {stage!r} leaves nothing to train in this model")
    return params


# ---------------------------------------------------------------------------- building

def build_pipeline(args, data: RefCocoData):
    from .pipeline import FlowSegPipeline
    from .presets import WORDS, preset_config, word_tokenizer
    if args.init:
        pipe = FlowSegPipeline.from_pretrained(args.init, device=args.device, dtype=torch.float32)
        if getattr(args, "query_position", False):
            add_query_position(pipe)
        return pipe
    overrides = parse_switches(args.switch)
    if getattr(args, "query_position", False):
        overrides["query_position"] = True
    if args.components:
        siglip, sam, llm = args.components
        return FlowSegPipeline.from_components(siglip, sam, llm, device=args.device,
                                               dtype=torch.float32, seed=args.seed, **overrides)
    # the word-level tokenizer must know the data's words, or they all become <unk>
    tokenizer = word_tokenizer(sorted(set(WORDS) | set(data.vocabulary())))
    return FlowSegPipeline.from_config(preset_config(args.preset, **overrides), tokenizer,
                                       seed=args.seed, device=args.device, dtype=torch.float32)


def add_query_position(pipe) -> None:
    """Give a loaded model config.query_position: the decoder gains a QueryGeometry whose
    zero last layer leaves its output unchanged until training moves it; the config (shared
    by the pipeline, the model and the decoder) records it, so save_pretrained keeps it."""
    config = pipe.model.decoder.config
    if config is not pipe.config or config is not pipe.model.config:
        raise RuntimeError("the pipeline, model and decoder must share one FlowSegConfig")
    pipe.model.decoder.add_query_geometry()
    config.query_position = True


def parse_switches(items) -> dict:
    from .config import SWITCHES
    known = {name for name, _ in SWITCHES}
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if name not in known or value.lower() not in ("true", "false", "on", "off", "1", "0"):
            raise ValueError(f"--switch {item!r}: expected NAME=on|off with NAME one of "
                             f"{sorted(known)}")
        out[name] = value.lower() in ("true", "on", "1")
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m engine.flowseg.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="RefCOCO-format folder")
    p.add_argument("--images", help="folder of the image files (default DATA/images or DATA)")
    p.add_argument("--split", default="train", help="refs split to train on (default train)")
    p.add_argument("--out", required=True, help="run folder (pipeline/, trainer.pt, log.jsonl)")
    src = p.add_argument_group("weights (one of)")
    src.add_argument("--preset", choices=("tiny", "demo", "small"), help="random weights")
    src.add_argument("--init", help="save_pretrained folder to start from")
    src.add_argument("--components", nargs=3, metavar=("SIGLIP", "SAM", "LLM"),
                     help="public base models (folders or cached repo ids)")
    src.add_argument("--resume", action="store_true", help="continue the run in --out")
    src.add_argument("--switch", action="append", metavar="NAME=on|off",
                     help="ablation switch for --preset/--components (repeatable)")
    tr = p.add_argument_group("training")
    tr.add_argument("--stage", choices=tuple(STAGES), default="joint")
    tr.add_argument("--steps", type=int, default=1000, help="total steps (sets the lr schedule)")
    tr.add_argument("--stop-at", type=int, default=None,
                    help="stop (and save) after this step, leaving the schedule as --steps sets it")
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--lr", type=float, default=4e-5, help="peak learning rate (paper: 4e-5)")
    tr.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine floor, x lr")
    tr.add_argument("--warmup", type=int, default=100)
    tr.add_argument("--weight-decay", type=float, default=0.05)
    tr.add_argument("--grad-clip", type=float, default=1.0)
    tr.add_argument("--points", type=int, default=12544, help="sampled points per mask")
    tr.add_argument("--lm-weight", type=float, default=1.0, help="0 turns the LM loss off")
    tr.add_argument("--generic-share", type=float, default=0.2,
                    help="joint stage: share of generic (category) samples")
    tr.add_argument("--query-position", action="store_true",
                    help="give the queries their mask's position (config.query_position; "
                         "with --init it is added to the loaded model, starting as a no-op)")
    tr.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                    help="stop (and save) after the first step past this many seconds since "
                         "the run started (loading included)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--save-every", type=int, default=500)
    tr.add_argument("--log-every", type=int, default=25)
    tr.add_argument("--device", default=None, help="cuda, cpu (default: cuda when present)")
    tr.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = p.parse_args(argv)
    if not args.resume and sum(x is not None for x in (args.preset, args.init, args.components)) != 1:
        p.error("give exactly one of --preset, --init, --components (or --resume)")
    return args


def run(args) -> Path:
    started = time.time()           # --time-limit counts loading too
    out = Path(args.out).expanduser()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume:
        saved = torch.load(out / TRAINER_STATE, map_location="cpu", weights_only=False)["args"]
        steps, threads, stop_at = args.steps, args.threads, args.stop_at
        args = argparse.Namespace(**{**saved, "resume": True, "init": str(out / PIPELINE_DIR),
                                     "steps": max(steps, saved["steps"]), "threads": threads,
                                     "stop_at": stop_at, "time_limit": args.time_limit})
    elif out.exists() and (out / TRAINER_STATE).exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or "
                              "choose a new --out")
    data = RefCocoData(args.data, split=args.split, images=args.images)
    torch.manual_seed(args.seed)
    pipe = build_pipeline(args, data)
    trainer = Trainer(pipe, data, args)
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        trainer.load(out)
    log_file = open(out / "log.jsonl", "a")
    print(f"stage {args.stage}: {len(data.referring)} referring, {len(data.generic)} generic "
          f"samples; {sum(p.numel() for p in trainer.params) / 1e6:.2f}M trainable parameters; "
          f"step {trainer.step} -> {args.steps} on {pipe.device}", flush=True)
    t0, last = time.time(), trainer.step
    end = min(args.steps, args.stop_at or args.steps)
    time_limit = getattr(args, "time_limit", None)
    while trainer.step < end:
        parts = trainer.train_step()
        if time_limit is not None and time.time() - started > time_limit and trainer.step < end:
            print(f"time limit {time_limit:g} s reached at step {trainer.step}", flush=True)
            end = trainer.step
        if trainer.step % args.log_every == 0 or trainer.step == end:
            rate = (time.time() - t0) / max(1, trainer.step - last)
            record = {"step": trainer.step, "lr": trainer.lr_at(trainer.step - 1),
                      "s_per_step": round(rate, 3), **{k: round(v, 4) for k, v in parts.items()}}
            trainer.history.append(record)
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            print(json.dumps(record), flush=True)
        if trainer.step % args.save_every == 0 or trainer.step == end:
            trainer.save(out)
    log_file.close()
    return out / PIPELINE_DIR


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
