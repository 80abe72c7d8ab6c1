"""FlowRVSConfig: what a FlowRVS checkpoint needs beyond the diffusers component configs.

The release shipped two generations of weights that differ in preprocessing, not in
architecture (see ../shared/reference/flowrvs-release.md):

- Gen1 (Oct-Dec 2025, `mevis_dit.pth`): DVI on (32 input channels), frames normalised with
  ImageNet mean/std, mask latent un-normalised (x * std + mean) before decoding, text padded
  to 64 tokens (the release code's default before 2026-02-26).
- Gen2 (Feb 2026, `FlowRVS_dit_mevis.pth`): DVI optional (16 channels by default), frames in
  [-1, 1], raw mask latent decoded, text padded to 256 tokens.

The config is saved next to the components as `flowrvs_config.json` by save_pretrained.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from engine.checks import JsonConfig

CONFIG_NAME = "flowrvs_config.json"
FORMAT_VERSION = 1

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass
class FlowRVSConfig(JsonConfig):
    CONFIG_NAME = CONFIG_NAME
    MISSING_HINT = ("is not a FlowRVS folder written by FlowRVSPipeline.save_pretrained. For the official "
                    "release files use FlowRVSPipeline.from_official(wan_dir, dit_checkpoint, vae_checkpoint)")
    generation: int = 2
    in_channels: int = 16             # patch_embedding input channels: z_dim, or 2*z_dim with DVI
    latent_channels: int = 16         # VAE z_dim
    frame_mean: tuple = HALF          # frames: (x/255 - mean) / std per RGB channel
    frame_std: tuple = HALF
    normalize_video_latent: bool = True     # z0 = (z0 - latents_mean) / latents_std
    unnormalize_mask_latent: bool = False   # Gen1: mask_latent * std + mean before decoding
    max_sequence_length: int = 256    # text tokens, zero-padded; no attention mask to the DiT
    max_height: int = 480             # frames are resized to fit inside max_height x max_width,
    max_width: int = 832              # keeping the aspect ratio, sides floored to size_multiple
    size_multiple: int = 16
    threshold: float = 0.5            # on sigmoid(decoded logits)
    format_version: int = FORMAT_VERSION
    notes: dict = field(default_factory=dict)

    @property
    def dvi(self) -> bool:
        """Direct Video Injection: the DiT input is cat([z_t, z0], dim=1)."""
        return self.in_channels == 2 * self.latent_channels

    def __post_init__(self):
        self.frame_mean = tuple(float(v) for v in self.frame_mean)
        self.frame_std = tuple(float(v) for v in self.frame_std)
        self.validate()

    def validate(self) -> None:
        if self.generation not in (1, 2):
            raise ValueError(f"generation must be 1 or 2, got {self.generation!r}")
        if self.in_channels not in (self.latent_channels, 2 * self.latent_channels):
            raise ValueError(
                f"in_channels must be {self.latent_channels} (no DVI) or {2 * self.latent_channels} "
                f"(DVI: video latent concatenated), got {self.in_channels}")
        if len(self.frame_mean) != 3 or len(self.frame_std) != 3 or min(self.frame_std) <= 0:
            raise ValueError(f"frame_mean/frame_std must be 3 values (std > 0), got "
                             f"{self.frame_mean} / {self.frame_std}")
        if self.max_sequence_length < 1:
            raise ValueError(f"max_sequence_length must be >= 1, got {self.max_sequence_length}")
        for name in ("max_height", "max_width"):
            value = getattr(self, name)
            if value < self.size_multiple:
                raise ValueError(f"{name} must be at least size_multiple={self.size_multiple}, "
                                 f"got {value}")

    @classmethod
    def for_generation(cls, generation: int, in_channels: int, latent_channels: int = 16,
                       **overrides) -> "FlowRVSConfig":
        """The release's preprocessing for a weight generation (see the module docstring)."""
        if generation == 1:
            base = dict(frame_mean=IMAGENET_MEAN, frame_std=IMAGENET_STD,
                        unnormalize_mask_latent=True, max_sequence_length=64)
        elif generation == 2:
            base = dict(frame_mean=HALF, frame_std=HALF, unnormalize_mask_latent=False,
                        max_sequence_length=256)
        else:
            raise ValueError(f"generation must be 1 or 2, got {generation!r}")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(generation=generation, in_channels=in_channels,
                   latent_channels=latent_channels, **base)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_mean"] = list(self.frame_mean)
        d["frame_std"] = list(self.frame_std)
        d["dvi"] = self.dvi
        return d

    @classmethod
    def from_dict(cls, d: dict, source=CONFIG_NAME) -> "FlowRVSConfig":
        """The inverse of to_dict. Unknown keys are refused by name (a newer FlowLabel's
        fields would otherwise be silently ignored); `dvi`, which to_dict writes for readers,
        must agree with the channels."""
        from engine.checks import known_fields
        version = d.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"{source} has format_version {version}; this FlowLabel reads "
                             f"up to {FORMAT_VERSION}. Update FlowLabel to load it.")
        d = dict(d)
        dvi = d.pop("dvi", None)
        config = cls(**known_fields(cls, d, source, "; it was written by another FlowLabel"))
        if dvi is not None and bool(dvi) != config.dvi:
            raise ValueError(f"{source} says dvi={dvi} but in_channels={config.in_channels} and "
                             f"latent_channels={config.latent_channels} mean dvi={config.dvi}")
        return config


def describe_generation(config: FlowRVSConfig) -> Optional[str]:
    return (f"gen{config.generation}: in_channels={config.in_channels} "
            f"({'DVI' if config.dvi else 'no DVI'}), frames normalised with mean "
            f"{config.frame_mean} std {config.frame_std}, "
            f"{'un-normalised' if config.unnormalize_mask_latent else 'raw'} mask latent decoded, "
            f"text padded to {config.max_sequence_length} tokens")
