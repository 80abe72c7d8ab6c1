"""Finding the Wan folder and reading the release's checkpoint files, strictly.

Layouts accepted (flowrvs-release.md, "Released weights"):
- DiT `.pth`: a bare state dict, or a training checkpoint holding `model` (a state dict)
  and/or `ema_model` (diffusers EMAModel.state_dict(): a positional `shadow_params` list);
  keys may carry `module.` prefixes. The input channel count (16, or 32 with DVI) is read
  from `patch_embedding.weight`.
- tuned VAE `.pth`: the whole AutoencoderKLWan with keys prefixed `vae.`, possibly nested
  under `model`; its decoder.conv_out has 1 output channel (read from the weight).

Loading is strict: a missing, unexpected or wrongly shaped key raises CheckpointError naming
the first few keys and the file. The one exception is the release's own: `total_ops` /
`total_params` buffers left by the thop profiler, which its loaders ignore too.
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Optional

import torch

from engine.hub import hub_cache_dir
from engine.torch_utils import state_mismatch

log = logging.getLogger(__name__)

WAN_REPO_ID = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
WAN_SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
_PROFILER_SUFFIXES = ("total_ops", "total_params")
# Order of each attention's parameters in the FlowRVS training class (diffusers' old
# `Attention`); EMA shadow_params are positional in that order.
_FLOWRVS_ATTN_ORDER = ("norm_q", "norm_k", "to_q", "to_k", "to_v", "to_out")


class CheckpointError(ValueError):
    """A checkpoint file does not match the model it is loaded into."""


# --------------------------------------------------------------------------- Wan folder

def resolve_wan_dir(wan_dir) -> Path:
    """A local Wan2.1 Diffusers folder from: the folder itself, a Hugging Face cache entry
    (models--Org--Name, whose refs/main or single snapshot is used), a hub cache root holding
    models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers, or a repo id already in the local cache.
    Never downloads (HF_HUB_OFFLINE semantics)."""
    if wan_dir is None or str(wan_dir).strip() == "":
        raise ValueError("wan_dir is required: a local Wan2.1-T2V-1.3B-Diffusers folder")
    path = Path(os.path.expanduser(str(wan_dir)))
    if path.is_dir():
        if _looks_like_wan(path):
            return path
        if (path / "snapshots").is_dir():
            return _snapshot_of(path)
        cached = path / ("models--" + WAN_REPO_ID.replace("/", "--"))
        if cached.is_dir():
            return _snapshot_of(cached)
        candidates = sorted(p.name for p in path.glob("models--*Wan2.1*")) if path.is_dir() else []
        raise FileNotFoundError(
            f"{path} is not a Wan2.1 Diffusers folder: it needs the subfolders "
            f"{', '.join(WAN_SUBFOLDERS)}" + (f"; found cache entries {candidates}, pass one"
                                              if candidates else "") +
            f". Download {WAN_REPO_ID} with `huggingface-cli download {WAN_REPO_ID} "
            "--local-dir DIR` and pass DIR")
    if not path.exists() and _is_repo_id(str(wan_dir)):
        entry = hub_cache_dir() / ("models--" + str(wan_dir).replace("/", "--"))
        if entry.is_dir():
            return _snapshot_of(entry)
        raise FileNotFoundError(
            f"{wan_dir!r} is neither a folder nor a repo in the local Hugging Face cache "
            f"({hub_cache_dir()}); FlowLabel never downloads. Fetch it first with "
            f"`huggingface-cli download {wan_dir}` or pass a local folder")
    raise FileNotFoundError(f"Wan folder {path} does not exist; pass a local "
                            f"{WAN_REPO_ID.split('/')[1]} folder or its Hugging Face cache path")


def _is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~"))


def _looks_like_wan(path: Path) -> bool:
    return (path / "transformer" / "config.json").is_file() or (path / "vae" / "config.json").is_file()


def _snapshot_of(entry: Path) -> Path:
    snapshots = entry / "snapshots"
    ref = entry / "refs" / "main"
    if ref.is_file():
        snap = snapshots / ref.read_text().strip()
        if snap.is_dir():
            return resolve_wan_dir(snap)
    found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if len(found) == 1:
        return resolve_wan_dir(found[0])
    if not found:
        raise FileNotFoundError(f"{entry} is a Hugging Face cache entry without snapshots; "
                                "the download did not finish")
    raise FileNotFoundError(f"{entry} holds several snapshots ({', '.join(p.name for p in found)}) "
                            f"and no refs/main; pass the snapshot folder you want")


def check_wan_dir(path: Path, need: Iterable[str]) -> None:
    missing = [sub for sub in need if not (path / sub).is_dir()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {', '.join(s + '/' for s in missing)}: it must be a "
                                f"complete {WAN_REPO_ID.split('/')[1]} folder with "
                                f"{', '.join(s + '/' for s in WAN_SUBFOLDERS)}")


# --------------------------------------------------------------------------- files

def read_checkpoint(path) -> object:
    """torch.load on CPU. Release files embed argparse.Namespace (training args), so a safe
    load allowing that class is tried first; anything else needs a full unpickle, which runs
    code from the file: only load checkpoints you trust."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    # mmap: training checkpoints carry optimizer state we never read; map instead of copying
    mmap = _is_zip_checkpoint(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        log.warning("%s needs a full unpickle (weights_only=False), which can run code stored "
                    "in the file; only load checkpoints you trust. (%s)", path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)


def _is_zip_checkpoint(path: Path) -> bool:
    import zipfile
    return zipfile.is_zipfile(path)


def build_model(model_cls, config, **overrides):
    """model_cls.from_config without random initialisation (strict loading overwrites every
    parameter and persistent buffer), as diffusers' from_pretrained does."""
    from diffusers.models.modeling_utils import no_init_weights
    with no_init_weights():
        return model_cls.from_config(config, **overrides)


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and \
        all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def strip_prefix(state: dict, prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Remove `prefix` (repeatedly, e.g. module.module.) from every key that has it."""
    out = OrderedDict()
    for k, v in state.items():
        while k.startswith(prefix):
            k = k[len(prefix):]
        out[k] = v
    return out


def drop_profiler_keys(state: dict) -> dict:
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith(_PROFILER_SUFFIXES))


def describe_keys(obj) -> str:
    if isinstance(obj, dict):
        keys = list(obj)[:8]
        return f"a dict with keys {keys}{' ...' if len(obj) > 8 else ''}"
    return type(obj).__name__


def dit_state_source(obj, path, weights: str = "auto") -> tuple[str, object]:
    """Pick the DiT weights inside a loaded file -> (kind, payload).

    kind is "state_dict" (payload a name->tensor dict) or "ema_shadow" (payload the positional
    shadow_params list). weights: "auto" (`model` if present, as the release's inference
    scripts do, else `ema_model`, else a bare state dict), "model" or "ema".
    """
    if weights not in ("auto", "model", "ema"):
        raise ValueError(f"weights must be 'auto', 'model' or 'ema', got {weights!r}")
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict or a training checkpoint dict, "
                              f"found {describe_keys(obj)}")
    has_model = isinstance(obj.get("model"), dict)
    has_ema = "ema_model" in obj and obj["ema_model"] is not None
    if weights == "model" and not has_model:
        raise CheckpointError(f"{path}: weights='model' but the file has no 'model' entry "
                              f"({describe_keys(obj)})")
    if weights == "ema" and not has_ema:
        raise CheckpointError(f"{path}: weights='ema' but the file has no 'ema_model' entry "
                              f"({describe_keys(obj)})")
    if has_model and weights in ("auto", "model"):
        return "state_dict", obj["model"]
    if has_ema:
        ema = obj["ema_model"]
        if isinstance(ema, dict) and "shadow_params" in ema:
            return "ema_shadow", list(ema["shadow_params"])
        if _is_state_dict(ema):
            return "state_dict", ema
        raise CheckpointError(f"{path}: 'ema_model' is neither an EMAModel state (with "
                              f"shadow_params) nor a state dict: {describe_keys(ema)}")
    if _is_state_dict(obj) or _is_state_dict(drop_profiler_keys(obj)):
        return "state_dict", obj
    raise CheckpointError(f"{path}: no DiT weights found: expected a state dict, or 'model' / "
                          f"'ema_model' entries; found {describe_keys(obj)}")


def dit_in_channels(kind: str, payload, path, model_order_shapes=None) -> int:
    """Input channels of patch_embedding (16 or 32) from a state dict or shadow list."""
    if kind == "state_dict":
        state = strip_prefix(payload, "module.")
        weight = state.get("patch_embedding.weight")
        if weight is None:
            raise CheckpointError(f"{path}: no patch_embedding.weight, so this is not a Wan DiT "
                                  f"checkpoint (first keys: {list(state)[:5]})")
        return int(weight.shape[1])
    # EMA shadow list: patch_embedding is the DiT's only Conv3d (the only 5-D parameter)
    first = next((t for t in payload if torch.is_tensor(t) and t.ndim == 5), None)
    if first is None:
        raise CheckpointError(f"{path}: ema_model.shadow_params holds no Conv3d "
                              "patch_embedding weight; cannot read the input channels")
    return int(first.shape[1])


def flowrvs_parameter_order(model: torch.nn.Module) -> list[str]:
    """Parameter names in the FlowRVS training class's order: diffusers' order, except that
    each attention's parameters go norm_q, norm_k, to_q, to_k, to_v, to_out."""
    names = [n for n, _ in model.named_parameters()]
    prefixes = [name + "." for name, module in model.named_modules()
                if hasattr(module, "to_q") and hasattr(module, "norm_q")]
    rank = {sub: r for r, sub in enumerate(_FLOWRVS_ATTN_ORDER)}
    group_of = {}
    for prefix in prefixes:
        for n in names:
            if n.startswith(prefix):
                group_of[n] = prefix
    out, done = [], set()
    for n in names:
        prefix = group_of.get(n)
        if prefix is None:
            out.append(n)
        elif prefix not in done:
            done.add(prefix)
            group = [m for m in names if group_of.get(m) == prefix]
            # stable sort: within a sub-module (to_q.weight, to_q.bias) diffusers' order stays
            group.sort(key=lambda m: rank.get(m[len(prefix):].split(".")[0], len(rank)))
            out.extend(group)
    return out


def shadow_to_state_dict(shadow: list, model: torch.nn.Module, path) -> "OrderedDict":
    """Name the positional EMA shadow_params by matching shapes against the candidate
    parameter orders (FlowRVS class first, then diffusers'). Exactly one must fit."""
    params = dict(model.named_parameters())
    orders = {"FlowRVS attention order": flowrvs_parameter_order(model),
              "diffusers order": list(params)}
    if len(shadow) != len(params):
        raise CheckpointError(f"{path}: ema_model.shadow_params has {len(shadow)} tensors but "
                              f"the DiT has {len(params)} parameters; the file was trained with "
                              "another architecture")
    fits = {}
    for label, order in orders.items():
        bad = [(n, tuple(t.shape), tuple(params[n].shape)) for n, t in zip(order, shadow)
               if tuple(t.shape) != tuple(params[n].shape)]
        if not bad:
            fits[label] = order
        else:
            log.debug("%s: %s does not fit (%d shape mismatches, first %s)", path, label,
                      len(bad), bad[0])
    if not fits:
        raise CheckpointError(f"{path}: ema_model.shadow_params fits neither the FlowRVS nor "
                              "the diffusers parameter order (shapes differ); cannot name them")
    label, order = next(iter(fits.items()))
    log.info("%s: EMA shadow_params named in the %s", path, label)
    return OrderedDict(zip(order, shadow))


def load_strict(model: torch.nn.Module, state: dict, path, what: str) -> None:
    """load_state_dict(strict=True) with an error that names keys and the file."""
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: {what} does not match the model: {problem}")
    model.load_state_dict(state, strict=True)


def dit_state_dict(obj, path, model: torch.nn.Module, kind: str, payload) -> "OrderedDict":
    """The name->tensor dict to load into `model` (prefixes stripped, EMA named)."""
    if kind == "ema_shadow":
        return shadow_to_state_dict(payload, model, path)
    return drop_profiler_keys(strip_prefix(payload, "module."))


def vae_state_dict(obj, path) -> "OrderedDict":
    """The tuned VAE's state dict: `model` unwrapped, `module.` and `vae.` prefixes removed."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and not _is_state_dict(obj):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: expected a VAE state dict (keys 'vae.encoder...'), "
                              f"found {describe_keys(obj)}")
    state = drop_profiler_keys(strip_prefix(obj, "module."))
    if not any(k.startswith("vae.") for k in state):
        log.info("%s: no 'vae.' prefix; reading it as a bare AutoencoderKLWan state dict", path)
    out = OrderedDict()
    for k, v in state.items():
        out[k[len("vae."):] if k.startswith("vae.") else k] = v
    if "decoder.conv_out.weight" not in out:
        raise CheckpointError(f"{path}: no vae.decoder.conv_out.weight, so this is not a "
                              f"FlowRVS tuned VAE (first keys: {list(state)[:5]})")
    return out


def vae_out_channels(state: dict) -> int:
    return int(state["decoder.conv_out.weight"].shape[0])


def checkpoint_generation_hint(obj) -> Optional[int]:
    """A generation recorded in the file itself, if any (our own files record it)."""
    if isinstance(obj, dict):
        for key in ("flowrvs_generation", "generation"):
            value = obj.get(key)
            if value in (1, 2):
                return int(value)
    return None


def load_diffusers_model(model_cls, folder, **config_overrides):
    """`model_cls` from a save_pretrained folder (config.json + safetensors, sharded or not),
    loaded strictly. Avoids diffusers' from_pretrained, which needs `accelerate` for models
    with keep-in-fp32 modules (WanTransformer3DModel)."""
    import json

    from safetensors.torch import load_file
    folder = Path(folder)
    config = model_cls.load_config(str(folder))
    model = build_model(model_cls, config, **config_overrides)
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    single = folder / "diffusion_pytorch_model.safetensors"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        files = [folder / s for s in shards]
    elif single.is_file():
        files = [single]
    else:
        raise FileNotFoundError(f"{folder} has no diffusion_pytorch_model.safetensors "
                                "(or its .index.json); save it with save_pretrained(...)")
    state = OrderedDict()
    for f in files:
        state.update(load_file(str(f)))
    load_strict(model, state, folder, f"{model_cls.__name__} weights")
    return model
