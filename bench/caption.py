"""How long a render's caption takes to fit, by the expression's length.

python bench/caption.py [LENGTH ...]   (default 2000 8000 characters)

Builds the caption patch of a 1080p clip (what every render does once) for an expression of
each length, and prints the wall time and how many times the text was measured.
"""
from __future__ import annotations

import argparse
import time

from PIL import ImageFont

from app.render.clip import TextPatch, font_px


def _counting_measures() -> list[int]:
    """Count FreeType measures (the cost that grew with the square of the length)."""
    calls = [0]
    original = ImageFont.FreeTypeFont.getlength

    def getlength(self, text, *args, **kwargs):
        calls[0] += 1
        return original(self, text, *args, **kwargs)

    ImageFont.FreeTypeFont.getlength = getlength
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lengths", nargs="*", type=int, default=[2000, 8000])
    args = parser.parse_args()
    calls = _counting_measures()
    width, height = 1920, 1080
    words = "the small brown monkey on the left behind the tree "
    for n in args.lengths:
        text = (words * (n // len(words) + 1))[:n]
        calls[0] = 0
        start = time.perf_counter()
        TextPatch([(text, [(255, 0, 0)])], width, font_px(height))
        print(f"{n:>7,} characters: {time.perf_counter() - start:8.3f} s, {calls[0]:,} measures", flush=True)


if __name__ == "__main__":
    main()
