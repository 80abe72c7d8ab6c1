"""FlowSegPipeline: image + referring expression -> mask, and the top-k candidate masks.

    pipe = FlowSegPipeline.from_pretrained("flowseg-model")          # save_pretrained folder
    mask = pipe(image, "the woman in the red coat")                  # bool [H, W]
    cands = pipe.candidates(image, "the woman in the red coat", k=5) # sorted by score
    cands.masks[0] is the selected mask, the one pipe(...) returns.

Start from the public base models (the decoder is then untrained) with
`FlowSegPipeline.from_components(siglip_dir, sam_dir, llm_dir)`.

`predict` is one numbered script: check inputs, encode the prompt, preprocess the image,
run the model, rank the queries, refine the top-k with BAR, back to the image grid. Calls
are serialised by a lock; the pipeline holds no other per-call state.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from engine.registry import pick_device
from engine.torch_utils import as_dtype

from . import checkpoints as ck
from .config import FlowSegConfig
from .images import check_image, logits_to_image, sam_pixels, siglip_pixels
from .model import FlowSegModel
from .text import add_special_tokens, check_tokens, encode_prompt

log = logging.getLogger(__name__)

TOKENIZER_DIR = "tokenizer"




@dataclass
class FlowSegCandidates:
    """Top-k masks, best first. masks[0] is the selected mask (what pipe(...) returns)."""
    masks: np.ndarray          # bool [k, H, W]
    scores: np.ndarray         # float32 [k], foreground probability, descending
    queries: np.ndarray        # int64 [k], decoder query index of each mask

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self):
        return iter(zip(self.masks, self.scores.tolist()))

    @property
    def selected(self) -> np.ndarray:
        return self.masks[0]


@dataclass
class FlowSegPrediction:
    """Everything `predict` computed, as NumPy, for inspection and tests."""
    candidates: FlowSegCandidates
    scores: np.ndarray         # float32 [N], every query's foreground probability
    raw_logits: np.ndarray     # float32 [k, h, w], top-k masks before BAR (mask-feature grid)
    refined_logits: np.ndarray  # float32 [k, h, w], after BAR
    band: np.ndarray           # bool [k, h, w], BAR's boundary band
    conditions: np.ndarray     # float32 [T, d], C(0)
    final_conditions: np.ndarray  # float32 [T, d], C(L)


class FlowSegPipeline:
    def __init__(self, model: FlowSegModel, tokenizer, config: Optional[FlowSegConfig] = None):
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.config = config or model.config
        check_tokens(tokenizer, self.config)
        rows = model.llm.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > rows:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the LLM embeds only "
                             f"{rows}; resize the embeddings (from_components does)")
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, config: FlowSegConfig, tokenizer, *, seed: int = 0, device=None,
                    dtype=None) -> "FlowSegPipeline":
        """Random weights for every part (tests, benchmarks): the towers from config.siglip /
        sam / llm, the special tokens added to `tokenizer` and the vocabulary grown to fit."""
        config = config.replace()
        add_special_tokens(tokenizer, config)
        config.llm = {**config.llm, "vocab_size": max(int(config.llm.get("vocab_size", 0)),
                                                      len(tokenizer))}
        build_on = torch.device(pick_device(device))   # a 4B LLM is built on the GPU directly
        with torch.random.fork_rng(devices=[]), build_on:
            torch.manual_seed(seed)
            model = FlowSegModel(config)
            model.init_new_parts()
        config.notes = {**config.notes, "source": "from_config", "seed": seed}
        return cls(model, tokenizer, config).to(device, dtype)

    @classmethod
    def from_components(cls, siglip_dir, sam_dir, llm_dir, *, device=None, dtype=None,
                        seed: int = 0, **config_overrides) -> "FlowSegPipeline":
        """The public base models (each a folder, a Hugging Face cache entry, or a repo id in
        the local cache; nothing is downloaded) plus FlowSeg's new parts, freshly initialised
        from `seed`: an untrained decoder, the starting point for training.

        siglip_dir: a SiglipModel or SiglipVisionModel (e.g. google/siglip2-so400m-patch14-384,
        model_type "siglip"). sam_dir: a SamModel or SamVisionModel (facebook/sam-vit-large).
        llm_dir: a Qwen3 causal LM and its tokenizer (Qwen/Qwen3-4B-Instruct-2507).
        config_overrides: FlowSegConfig fields (switches, sizes, sam_feature_layers, ...).
        """
        from transformers import AutoTokenizer, Qwen3ForCausalLM, SamVisionModel, SiglipVisionModel
        device = pick_device(device)
        dtype = as_dtype(dtype, device)
        siglip_dir = ck.resolve_model_dir(siglip_dir, "SigLIP")
        sam_dir = ck.resolve_model_dir(sam_dir, "SAM")
        llm_dir = ck.resolve_model_dir(llm_dir, "LLM")
        _check_model_type(siglip_dir, "SigLIP", ("siglip", "siglip_vision_model"),
                          "SigLIP2 so400m-patch14-384 ships as model_type 'siglip'; the NaFlex "
                          "variant (siglip2) is not the X-SAM tower")
        _check_model_type(sam_dir, "SAM", ("sam", "sam_vision_model"), "")
        _check_model_type(llm_dir, "LLM", ("qwen3",), "FlowSeg's LLM is a Qwen3 causal LM")

        siglip = ck.load_tower(SiglipVisionModel, siglip_dir, "SigLIP", dtype=dtype)
        sam = ck.load_tower(SamVisionModel, sam_dir, "SAM", dtype=dtype)
        llm = ck.load_tower(Qwen3ForCausalLM, llm_dir, "LLM", dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(llm_dir), local_files_only=True)

        defaults = _defaults_for(sam.config)
        defaults.update(config_overrides)
        config = FlowSegConfig(siglip=siglip.config.to_dict(), sam=sam.config.to_dict(),
                               llm={}, **defaults)
        add_special_tokens(tokenizer, config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rows = llm.get_input_embeddings().weight.shape[0]
            if len(tokenizer) > rows:
                llm.resize_token_embeddings(len(tokenizer))
            config.llm = llm.config.to_dict()
            model = FlowSegModel(config, siglip=siglip, sam=sam, llm=llm)
            model.init_new_parts()
        config.notes = {**config.notes, "source": "from_components", "seed": seed,
                        "siglip": str(siglip_dir), "sam": str(sam_dir), "llm": str(llm_dir)}
        return cls(model, tokenizer, config).to(device, dtype)

    @classmethod
    def from_pretrained(cls, directory, device=None, dtype=None) -> "FlowSegPipeline":
        """Load a folder written by save_pretrained; strict about every weight."""
        from transformers import AutoTokenizer
        from transformers.initialization import no_init_weights
        directory = Path(directory).expanduser()
        config = FlowSegConfig.load(directory)
        if not (directory / TOKENIZER_DIR).is_dir():
            raise FileNotFoundError(f"{directory} lacks {TOKENIZER_DIR}/; save_pretrained "
                                    "writes it next to flowseg_config.json")
        tokenizer = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIR),
                                                  local_files_only=True)
        with no_init_weights():
            model = FlowSegModel(config)
        model.llm.tie_weights()          # no_init_weights skips the tying done in post_init
        ck.load_weights(model, directory / ck.WEIGHTS_NAME)
        return cls(model, tokenizer, config).to(device, dtype)

    def save_pretrained(self, directory) -> Path:
        """flowseg_config.json, model.safetensors and tokenizer/."""
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.config.save(directory)
            ck.save_weights(self.model, directory / ck.WEIGHTS_NAME)
            self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return directory

    # ------------------------------------------------------------------ devices

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def to(self, device=None, dtype=None) -> "FlowSegPipeline":
        device = torch.device(pick_device(device) if device is not None else self.device)
        dtype = as_dtype(dtype, str(device)) if dtype is not None else self.dtype
        self.model.to(device=device, dtype=dtype)
        return self

    # ------------------------------------------------------------------ running

    def __call__(self, image: np.ndarray, expression: str) -> np.ndarray:
        """uint8 [H, W, 3] RGB image -> bool [H, W] mask of the object the expression names."""
        return self.predict(image, expression, k=1).candidates.masks[0]

    def candidates(self, image: np.ndarray, expression: str, k: int = 5) -> FlowSegCandidates:
        """The k best-scoring masks (fewer if the model has fewer queries), best first; the
        first is the selected mask."""
        return self.predict(image, expression, k=k).candidates

    def check_inputs(self, image, expression, k) -> None:
        check_image(image)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer (how many candidate masks), got {k!r}")
        encode_prompt(self.tokenizer, self.config, expression)   # validates the expression

    @torch.inference_mode()
    def predict(self, image: np.ndarray, expression: str, k: int = 5) -> FlowSegPrediction:
        with self._lock:
            # 1. check inputs
            self.check_inputs(image, expression, k)
            model, device = self.model, self.device
            k = min(int(k), self.config.num_queries)

            # 2. encode the prompt
            ids = torch.tensor([encode_prompt(self.tokenizer, self.config, expression)],
                               device=device)

            # 3. preprocess the image for both encoders
            siglip_size = model.siglip.config.image_size
            sam_size = model.sam.config.image_size
            sig = siglip_pixels(image, siglip_size, device)
            sam, valid = sam_pixels(image, sam_size, device)

            # 4. run the model: encoders, LLM, pixel decoder, BSF decoder
            out = model(sig, sam, ids)

            # 5. rank the queries by foreground probability (ties: lower query first)
            scores = out.scores[0].float()
            order = torch.sort(scores, descending=True, stable=True).indices[:k]

            # 6. BAR on the top-k masks only (selection does not depend on it)
            raw = out.mask_logits[:, order]
            refined, band = model.refine(raw, out.mask_features)

            # 7. back to the image grid, threshold
            logits = logits_to_image(refined[0], sam_size, valid, image.shape[:2])
            cut = float(np.log(self.config.threshold / (1 - self.config.threshold)))
            masks = (logits > cut).cpu().numpy()
            candidates = FlowSegCandidates(masks, scores[order].cpu().numpy().astype(np.float32),
                                           order.cpu().numpy().astype(np.int64))
            keep = ~out.condition_pad[0]
            return FlowSegPrediction(
                candidates=candidates,
                scores=scores.cpu().numpy().astype(np.float32),
                raw_logits=raw[0].float().cpu().numpy(),
                refined_logits=refined[0].float().cpu().numpy(),
                band=band[0].cpu().numpy(),
                conditions=out.conditions[0][keep].float().cpu().numpy(),
                final_conditions=out.final_conditions[0][keep].float().cpu().numpy())


def _check_model_type(folder: Path, what: str, allowed: tuple, hint: str) -> None:
    model_type = ck.read_model_config(folder).get("model_type")
    if model_type not in allowed:
        raise ValueError(f"{what}: {folder} holds model_type {model_type!r}; expected one of "
                         f"{allowed}" + (f". {hint}" if hint else ""))


def _defaults_for(sam_config) -> dict:
    """FlowSeg defaults that follow the SAM tower: X-SAM's layers 12/18/24 of ViT-L become
    the half, three-quarter and last layer of any depth; the connector width is SAM's."""
    n = sam_config.num_hidden_layers
    return {"sam_feature_layers": (n // 2, (3 * n) // 4, n),
            "connector_width": sam_config.hidden_size,
            "connector_mid": max(2, sam_config.hidden_size // 2)}
