"""One FlowSeg training run: TrainConfig (every option of `python -m engine.flowseg.train`),
the batcher (samples -> model inputs), Trainer (stages, lr schedule, loss, checkpoints) and run().
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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
# random-weight starts: presets.PRESETS less "full" (a full-size run starts from --components)
TRAIN_PRESETS = ("tiny", "demo", "small")


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


@dataclass
class TrainConfig:
    """The options of one run; field names are the CLI's flags (--batch-size -> batch_size)."""
    data: str                                  # RefCOCO-format folder
    out: str                                   # run folder (pipeline/, trainer.pt, log.jsonl)
    images: Optional[str] = None               # image files (default DATA/images or DATA)
    split: str = "train"                       # refs split to train on
    # weights: exactly one of preset, init, components (or resume)
    preset: Optional[str] = None               # random weights: tiny, demo or small
    init: Optional[str] = None                 # save_pretrained folder to start from
    components: Optional[tuple] = None         # (SIGLIP, SAM, LLM) public base models
    resume: bool = False                       # continue the run in `out`
    switch: tuple = ()                         # "NAME=on|off" ablation switches
    # training
    stage: str = "joint"
    steps: int = 1000                          # total steps (sets the lr schedule)
    stop_at: Optional[int] = None              # stop (and save) after this step
    batch_size: int = 8
    lr: float = 4e-5                           # peak learning rate (paper: 4e-5)
    min_lr_ratio: float = 0.1                  # cosine floor, x lr
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    points: int = 12544                        # sampled points per mask
    lm_weight: float = 1.0                     # 0 turns the LM loss off
    generic_share: float = 0.2                 # joint stage: share of generic samples
    query_position: bool = False               # give the queries their mask's position (config flag)
    time_limit: Optional[float] = None         # seconds from the run's start; then stop and save
    seed: int = 0
    save_every: int = 500
    log_every: int = 25
    device: Optional[str] = None               # None: cuda when present
    threads: Optional[int] = None

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.preset is not None and self.preset not in TRAIN_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(TRAIN_PRESETS)}, "
                             f"got {self.preset!r}")
        self.switch = tuple(self.switch or ())
        if self.components is not None:
            self.components = tuple(self.components)
            if len(self.components) != 3:
                raise ValueError("components must be three folders: SIGLIP SAM LLM")
        sources = sum(x is not None for x in (self.preset, self.init, self.components))
        if not self.resume and sources != 1:
            raise ValueError("give exactly one of --preset, --init, --components (or --resume)")

    @classmethod
    def from_dict(cls, d: dict, source="a checkpoint") -> "TrainConfig":
        """From dataclasses.asdict(config) (or an older trainer.pt's vars(Namespace): the
        same keys); unknown keys are refused by name."""
        from engine.checks import known_fields
        return cls(**known_fields(cls, d, source, "; it was written by another FlowLabel"))


# ---------------------------------------------------------------------------- the loop

class Trainer:
    def __init__(self, pipe, data: RefCocoData, config: TrainConfig):
        self.pipe, self.data, self.config = pipe, data, config
        self.model = pipe.model
        self.device = pipe.device
        self.batcher = Batcher(data, pipe, self.device)
        self.criterion = FlowSegCriterion(num_points=config.points, lm_weight=config.lm_weight)
        self.params = trainable(self.model, config.stage)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.step = 0
        self.history: list[dict] = []

    # batches are a function of (seed, step): resuming needs no data-loader state
    def samples(self, step: int) -> list[Sample]:
        a = self.config
        rng = np.random.default_rng((a.seed, step))
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
        a = self.config
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
            if self.config.lm_weight:
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
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        parts["grad_norm"] = float(grad_norm)
        self.optimizer.step()
        self.step += 1
        return parts

    # ------------------------------------------------------------------ checkpoints

    def save(self, out: Path) -> None:
        self.model.eval()
        self.pipe.save_pretrained(out / PIPELINE_DIR)
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "config": dataclasses.asdict(self.config),
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

def build_pipeline(config: TrainConfig, data: RefCocoData):
    from .pipeline import FlowSegPipeline
    from .presets import WORDS, preset_config, word_tokenizer
    if config.init:
        pipe = FlowSegPipeline.from_pretrained(config.init, device=config.device, dtype=torch.float32)
        if config.query_position:
            add_query_position(pipe)
        return pipe
    overrides = parse_switches(config.switch)
    if config.query_position:
        overrides["query_position"] = True
    if config.components:
        siglip, sam, llm = config.components
        return FlowSegPipeline.from_components(siglip, sam, llm, device=config.device,
                                               dtype=torch.float32, seed=config.seed, **overrides)
    # the word-level tokenizer must know the data's words, or they all become <unk>
    tokenizer = word_tokenizer(sorted(set(WORDS) | set(data.vocabulary())))
    return FlowSegPipeline.from_config(preset_config(config.preset, **overrides), tokenizer,
                                       seed=config.seed, device=config.device, dtype=torch.float32)


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


def run(config: TrainConfig) -> Path:
    """The whole run (or its continuation, config.resume): train to config.steps, or to
    config.stop_at, saving pipeline/ and trainer.pt every save_every steps and at the end."""
    started = time.time()           # time_limit counts loading too
    out = Path(config.out).expanduser()
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.resume:
        config = resumed_config(config, out)
    elif out.exists() and (out / TRAINER_STATE).exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or "
                              "choose a new --out")
    data = RefCocoData(config.data, split=config.split, images=config.images)
    torch.manual_seed(config.seed)
    pipe = build_pipeline(config, data)
    trainer = Trainer(pipe, data, config)
    out.mkdir(parents=True, exist_ok=True)
    if config.resume:
        trainer.load(out)
    log_file = open(out / "log.jsonl", "a")
    print(f"stage {config.stage}: {len(data.referring)} referring, {len(data.generic)} generic "
          f"samples; {sum(p.numel() for p in trainer.params) / 1e6:.2f}M trainable parameters; "
          f"step {trainer.step} -> {config.steps} on {pipe.device}", flush=True)
    t0, last = time.time(), trainer.step
    end = min(config.steps, config.stop_at or config.steps)
    while trainer.step < end:
        parts = trainer.train_step()
        if config.time_limit is not None and time.time() - started > config.time_limit and trainer.step < end:
            print(f"time limit {config.time_limit:g} s reached at step {trainer.step}", flush=True)
            end = trainer.step
        if trainer.step % config.log_every == 0 or trainer.step == end:
            rate = (time.time() - t0) / max(1, trainer.step - last)
            record = {"step": trainer.step, "lr": trainer.lr_at(trainer.step - 1),
                      "s_per_step": round(rate, 3), **{k: round(v, 4) for k, v in parts.items()}}
            trainer.history.append(record)
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            print(json.dumps(record), flush=True)
        if trainer.step % config.save_every == 0 or trainer.step == end:
            trainer.save(out)
    log_file.close()
    return out / PIPELINE_DIR


def resumed_config(config: TrainConfig, out: Path) -> TrainConfig:
    """The saved run's config, from its own pipeline/, with this call's steps (never fewer
    than planned), threads and stop_at."""
    path = out / TRAINER_STATE
    state = torch.load(path, map_location="cpu", weights_only=False)
    # files written before TrainConfig hold vars(argparse.Namespace), same keys, under "args"
    saved = TrainConfig.from_dict(state["config"] if "config" in state else state["args"], path)
    return dataclasses.replace(saved, resume=True, init=str(out / PIPELINE_DIR),
                               steps=max(config.steps, saved.steps), threads=config.threads,
                               stop_at=config.stop_at, time_limit=config.time_limit)
