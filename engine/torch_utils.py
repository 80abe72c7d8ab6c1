"""Small torch helpers shared by the engines (imported only by code that already needs torch)."""
from __future__ import annotations

import torch

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def as_dtype(dtype, device) -> torch.dtype:
    """None -> bf16 on CUDA, fp32 elsewhere; a torch dtype or its usual name otherwise."""
    if dtype is None:
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if str(dtype) not in _DTYPES:
        raise ValueError(f"dtype must be a torch dtype or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[str(dtype)]


def state_mismatch(expected: dict, state: dict) -> str | None:
    """What differs between a model's state dict and a file's, naming keys; None if they match."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
              if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} key(s): {', '.join(unexpected[:5])}"
                     f"{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        parts.append(f"wrong shape for {len(shapes)} key(s) (file vs model): "
                     f"{'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    return "; ".join(parts) or None
