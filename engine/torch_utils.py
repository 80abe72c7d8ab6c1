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
    return key_problems(missing, unexpected, shapes)


def key_problems(missing: list, unexpected: list, shapes: list) -> str | None:
    """One line naming the first missing, unexpected and mis-shaped keys (file vs model); None if none."""
    def few(keys: list, n: int, sep: str = ", ") -> str:
        return sep.join(keys[:n]) + (" ..." if len(keys) > n else "")
    parts = [f"missing {len(missing)} key(s): {few(missing, 5)}"] if missing else []
    parts += [f"unexpected {len(unexpected)} key(s): {few(unexpected, 5)}"] if unexpected else []
    parts += [f"wrong shape for {len(shapes)} key(s) (file vs model): {few(shapes, 3, '; ')}"] if shapes else []
    return "; ".join(parts) or None
