"""Terminal output shared by the long-running commands (annotate, evaluate)."""
from __future__ import annotations

import sys


def progress_bar(total: int, description: str, enabled: bool = True):
    """A tqdm bar on stderr (a context manager); disabled, it counts silently."""
    from tqdm import tqdm
    return tqdm(total=total, desc=description, unit="expr", file=sys.stderr, disable=not enabled)
