"""Finding base models on disk (never downloading), loading them strictly, and FlowSeg's own
weight file.

Base models (from_components): a folder with config.json, a Hugging Face cache entry
(models--Org--Name, its refs/main snapshot), or a repo id already in the local hub cache.
The towers load through transformers' from_pretrained with local_files_only; a missing or
mis-shaped key raises CheckpointError. Unexpected keys are accepted only where a full model
holds more than the tower (SiglipModel's text tower, SamModel's prompt encoder and mask
decoder).

FlowSeg folders: one `model.safetensors` with every weight (tied weights stored once),
checked key by key against the model before loading.
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from pathlib import Path

import torch

from engine.torch_utils import key_problems, state_mismatch

WEIGHTS_NAME = "model.safetensors"

# Keys a full checkpoint may hold beyond the tower we take from it.
EXTRA_PREFIXES = {
    "SigLIP": ("text_model.", "logit_scale", "logit_bias"),
    "SAM": ("prompt_encoder.", "mask_decoder.", "shared_image_embedding."),
    "LLM": (),
}


class CheckpointError(ValueError):
    """A weight file does not match the model it is loaded into."""


# --------------------------------------------------------------------------- base models

def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))


def _snapshot_of(entry: Path) -> Path:
    ref = entry / "refs" / "main"
    if ref.is_file():
        snap = entry / "snapshots" / ref.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted(p for p in (entry / "snapshots").glob("*") if p.is_dir())
    if len(snaps) == 1:
        return snaps[0]
    raise FileNotFoundError(f"{entry}: cannot pick a snapshot (no refs/main, "
                            f"{len(snaps)} snapshots); pass the snapshot folder itself")


def resolve_model_dir(location, what: str) -> Path:
    """A local model folder (holding config.json) from a folder, a cache entry, or a repo id
    in the local Hugging Face cache. Never downloads."""
    if location is None or not str(location).strip():
        raise ValueError(f"{what}: a model folder is required")
    path = Path(os.path.expanduser(str(location)))
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        if (path / "snapshots").is_dir():
            return _check_config(_snapshot_of(path), what)
        raise FileNotFoundError(f"{what}: {path} has no config.json; pass the model folder, its "
                                "Hugging Face cache entry (models--Org--Name) or a snapshot")
    if _is_repo_id(str(location)):
        entry = hub_cache_dir() / ("models--" + str(location).replace("/", "--"))
        if entry.is_dir():
            return _check_config(_snapshot_of(entry), what)
        raise FileNotFoundError(
            f"{what}: {location!r} is neither a folder nor a repo in the local Hugging Face "
            f"cache ({hub_cache_dir()}); FlowLabel never downloads. Fetch it first with "
            f"`huggingface-cli download {location}` or pass a local folder")
    raise FileNotFoundError(f"{what}: {path} does not exist")


def _check_config(folder: Path, what: str) -> Path:
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{what}: {folder} has no config.json")
    return folder


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_tower(model_cls, folder: Path, what: str, dtype=None):
    """model_cls.from_pretrained(folder) offline, strict about missing and mis-shaped keys."""
    with _quiet_transformers():
        model, info = model_cls.from_pretrained(str(folder), local_files_only=True, dtype=dtype,
                                                output_loading_info=True)
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(str(m) for m in info.get("mismatched_keys") or [])
    extra = tuple(EXTRA_PREFIXES.get(what, ()))
    unexpected = sorted(k for k in info.get("unexpected_keys") or [] if not k.startswith(extra))
    problems = key_problems(missing, unexpected, mismatched)
    if problems:
        raise CheckpointError(f"{folder}: {what} weights do not match {model_cls.__name__}: {problems}")
    return model


def read_model_config(folder: Path) -> dict:
    import json
    return json.loads((folder / "config.json").read_text())


# --------------------------------------------------------------------------- own format

def tied_aliases(model: torch.nn.Module) -> dict:
    """{alias: kept name} for state-dict entries sharing storage with an earlier entry
    (e.g. Qwen3's lm_head.weight tied to embed_tokens.weight)."""
    seen, aliases = {}, {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype) if tensor.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
        elif key is not None:
            seen[key] = name
    return aliases


def save_weights(model: torch.nn.Module, path: Path) -> Path:
    from safetensors.torch import save_file
    aliases = tied_aliases(model)
    state = OrderedDict((k, v.detach().contiguous()) for k, v in model.state_dict().items()
                        if k not in aliases)
    save_file(state, str(path), metadata={"format": "pt", "tied": ",".join(
        f"{a}={k}" for a, k in aliases.items())})
    return path


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Strict: every key the model expects (tied aliases excepted), none other, same shapes."""
    from safetensors.torch import load_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; FlowSegPipeline.save_pretrained writes it")
    state = load_file(str(path))
    check_state(model, state, path)
    model.load_state_dict(state, strict=False)


def check_state(model: torch.nn.Module, state: dict, path) -> None:
    aliases = tied_aliases(model)
    expected = {k: v for k, v in model.state_dict().items() if k not in aliases}
    problem = state_mismatch(expected, state)
    if problem:
        raise CheckpointError(f"{path}: FlowSeg weights do not match the model built from "
                              f"flowseg_config.json: {problem}")
