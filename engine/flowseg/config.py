"""FlowSegConfig: everything needed to rebuild a FlowSeg model and run it.

The three public towers keep their own transformers configs, stored as dicts in `siglip`,
`sam` and `llm`. The rest describes FlowSeg's own parts: the SAM connector, the Mask2Former
pixel decoder, the Bidirectional Semantic Flow decoder and its switches, Boundary-Aware
Refinement and the prompt. save_pretrained writes it as `flowseg_config.json`.

Defaults are the paper's full-size choices (../shared/reference/flowseg-design.md). Fields
marked "init" only matter when parts are freshly initialised; loading overwrites them.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Optional

from engine.checks import JsonConfig

CONFIG_NAME = "flowseg_config.json"
FORMAT_VERSION = 1
CONDITION_MODES = ("tokens", "pooled")

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
SAM_MEAN = (0.485, 0.456, 0.406)     # ImageNet, as SamProcessor
SAM_STD = (0.229, 0.224, 0.225)

# (switch, what it removes): the ablation switches, in the order the paper adds them.
SWITCHES = (
    ("semantic_refinement", "SR: semantic cross-attention to the conditions and its gate"),
    ("semantic_gate", "the sigmoid gate (off: Qfused = Qvis + Qsem)"),
    ("condition_refinement", "CR: C <- C + MHA(C, Qs, Qs) after every layer"),
    ("seg_to_queries", "S (the <SEG> embedding) added to the initial queries"),
    ("masked_attention", "Mask2Former's attention mask in the visual cross-attention"),
    ("boundary_refinement", "BAR: tanh residual inside the boundary band"),
)


@dataclass
class FlowSegConfig(JsonConfig):
    CONFIG_NAME = CONFIG_NAME
    MISSING_HINT = ("is not a FlowSeg folder written by FlowSegPipeline.save_pretrained. To start from the"
                    " public base models use FlowSegPipeline.from_components(siglip_dir, sam_dir, llm_dir)")
    # Tower configs (transformers `to_dict()` output).
    siglip: dict = field(default_factory=dict)   # SiglipVisionConfig
    sam: dict = field(default_factory=dict)      # SamVisionConfig
    llm: dict = field(default_factory=dict)      # Qwen3Config

    # Special tokens; the ids are filled in when the tokens are added to the tokenizer.
    p_open_token: str = "<p>"
    p_close_token: str = "</p>"
    seg_token: str = "<SEG>"
    p_open_id: int = -1
    p_close_id: int = -1
    seg_id: int = -1

    # Encoders.
    siglip_layer: int = -2                       # hidden_states index fed to the projector
    sam_feature_layers: tuple = (12, 18, 24)     # SAM hidden_states -> strides 8, 16, 32
    sam_llm_layer: Optional[int] = -2            # SAM tokens for the LLM; None: SigLIP only
    sam_llm_unshuffle: int = 2                   # pixel-unshuffle before the SAM-token MLP
    connector_width: int = 1024                  # "1024*s" of the connector (SAM ViT-L width)
    connector_mid: int = 512

    # Mask2Former pixel decoder (multi-scale deformable attention encoder).
    pixel_feature_size: int = 256                # GroupNorm(32): a multiple of 32
    mask_feature_size: int = 256
    pixel_encoder_layers: int = 6
    pixel_encoder_ffn: int = 1024
    pixel_heads: int = 8

    # Mask decoder (Mask2Former layers with Bidirectional Semantic Flow).
    hidden_dim: int = 256
    num_heads: int = 8
    dim_feedforward: int = 2048
    decoder_layers: int = 9                      # + the initial prediction = Mask2Former's 10
    num_queries: int = 200
    dropout: float = 0.0

    # Ablation switches (see SWITCHES); a switched-off part has no parameters.
    semantic_refinement: bool = True
    semantic_gate: bool = True
    condition_refinement: bool = True
    seg_to_queries: bool = True
    masked_attention: bool = True
    boundary_refinement: bool = True
    condition_mode: str = "tokens"               # "tokens": the <p> span's tokens; "pooled": one vector
    gate_bias_init: float = 2.0                  # init: g = sigmoid(2) = 0.88 favours vision at first
    # Not in the paper, off by default: each prediction's mask geometry (centroid, spread, area)
    # embedded into the query content, so selection can match "left", "top", ordinals
    # (decoder.QueryGeometry). On, the decoder has a `geometry.` MLP the weights must hold.
    query_position: bool = False

    # Boundary-Aware Refinement.
    bar_eps: float = 0.1
    bar_kernel: int = 3                          # morphological structuring element (square)
    bar_comp_channels: int = 8                   # f_comp: 1x1 conv of the mask features
    bar_hidden: int = 16                         # f_refine: conv3x3 -> ReLU -> conv3x3
    bar_alpha_init: float = 0.1                  # init

    # Selection.
    logit_scale_init: float = math.log(1 / 0.07)  # init
    logit_scale_max: float = 50.0                # exp(logit_scale) is clamped to this

    # Prompt (X-SAM's referring-segmentation wording). The answer is teacher-forced.
    prompt: str = "<image>\nCan you segment <p>{expression}</p> in this image?"
    answer: str = "Sure, it is <SEG>."
    use_chat_template: bool = True               # when the tokenizer has one
    threshold: float = 0.5                       # on sigmoid(mask logits)

    format_version: int = FORMAT_VERSION
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        # JSON-normal form (e.g. id2label's int keys become strings) so that a saved and
        # reloaded config compares equal to the original.
        for name in ("siglip", "sam", "llm", "notes"):
            setattr(self, name, json.loads(json.dumps(getattr(self, name))))
        self.sam_feature_layers = tuple(int(i) for i in self.sam_feature_layers)
        self.validate()

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        for name in ("hidden_dim", "num_heads", "dim_feedforward", "decoder_layers",
                     "num_queries", "connector_width", "connector_mid", "pixel_feature_size",
                     "mask_feature_size", "pixel_encoder_layers", "pixel_encoder_ffn",
                     "pixel_heads", "bar_kernel", "bar_comp_channels", "bar_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be divisible by num_heads "
                             f"{self.num_heads}")
        if self.pixel_feature_size % 32:
            raise ValueError(f"pixel_feature_size must be a multiple of 32 (the pixel decoder "
                             f"uses GroupNorm(32)), got {self.pixel_feature_size}")
        if self.pixel_feature_size % self.pixel_heads:
            raise ValueError(f"pixel_feature_size {self.pixel_feature_size} must be divisible "
                             f"by pixel_heads {self.pixel_heads}")
        if self.connector_width % 2:
            raise ValueError(f"connector_width must be even (level s=2 pixel-shuffles "
                             f"2*width channels by 2), got {self.connector_width}")
        if len(self.sam_feature_layers) != 3:
            raise ValueError(f"sam_feature_layers must name 3 SAM hidden_states (strides 8, 16, "
                             f"32), got {self.sam_feature_layers}")
        if not isinstance(self.query_position, bool):
            raise ValueError(f"query_position must be true or false, got {self.query_position!r}")
        if self.condition_mode not in CONDITION_MODES:
            raise ValueError(f"condition_mode must be one of {CONDITION_MODES}, got "
                             f"{self.condition_mode!r}")
        if not 0 < self.bar_eps < 1:
            raise ValueError(f"bar_eps must be in (0, 1), got {self.bar_eps}")
        if self.bar_kernel % 2 == 0:
            raise ValueError(f"bar_kernel must be odd, got {self.bar_kernel}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if "{expression}" not in self.prompt or self.prompt.count("<image>") != 1:
            raise ValueError("prompt must contain '{expression}' and exactly one '<image>', got "
                             f"{self.prompt!r}")
        if self.seg_token not in self.answer:
            raise ValueError(f"answer must contain {self.seg_token!r}, got {self.answer!r}")
        if self.sam:
            layers = int(self.sam.get("num_hidden_layers", 0))
            for i in self.sam_feature_layers:
                if not -layers - 1 <= i <= layers:
                    raise ValueError(f"sam_feature_layers {self.sam_feature_layers}: SAM has "
                                     f"hidden_states 0..{layers}")
            patch = int(self.sam.get("patch_size", 16))
            if patch % 2:
                raise ValueError(f"the SAM patch size must be even (strides patch/2, patch, "
                                 f"2*patch), got {patch}")

    # ------------------------------------------------------------------ derived

    @property
    def token_ids(self) -> dict:
        return {"p_open": self.p_open_id, "p_close": self.p_close_id, "seg": self.seg_id}

    @property
    def special_tokens(self) -> tuple:
        return (self.p_open_token, self.p_close_token, self.seg_token)

    def switches(self) -> dict:
        return {name: getattr(self, name) for name, _ in SWITCHES}

    def replace(self, **changes) -> "FlowSegConfig":
        d = asdict(self)
        d.update(changes)
        return FlowSegConfig(**d)

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sam_feature_layers"] = list(self.sam_feature_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict, source=CONFIG_NAME) -> "FlowSegConfig":
        from engine.checks import known_fields
        version = d.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"{source} has format_version {version}; this FlowLabel reads "
                             f"up to {FORMAT_VERSION}. Update FlowLabel to load it.")
        return cls(**known_fields(cls, d, source, "; it was written by another FlowSeg version"))
