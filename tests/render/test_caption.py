"""Fitting a render's caption: the longest start of the text that fits, found with few measures
(a long expression once blocked every render for minutes)."""
import math

import pytest
from PIL import ImageFont

from app.render.clip import TextPatch, _fit, font_px


class CountingFont:
    """The real FreeType font, counting its measures and refusing past a budget."""

    def __init__(self, size: int, budget: int):
        self.font, self.budget, self.measures = ImageFont.load_default(size=size), budget, 0

    def getlength(self, text: str) -> float:
        self.measures += 1
        if self.measures > self.budget:
            raise AssertionError(f"more than {self.budget} measures to fit one caption")
        return self.font.getlength(text)


WORDS = "the small brown monkey on the left behind the tree "


@pytest.mark.parametrize("length", [2_000, 8_000])
def test_a_long_caption_is_cut_to_the_longest_start_that_fits_with_log_n_measures(length):
    text = (WORDS * (length // len(WORDS) + 1))[:length]
    width = 1000.0
    font = CountingFont(font_px(1080), budget=2 * math.ceil(math.log2(length)) + 4)
    shown = _fit(font, text, width)
    assert shown.endswith("...") and text.startswith(shown[:-3])
    real = font.font
    assert real.getlength(shown) <= width
    assert real.getlength(text[:len(shown) - 2] + "...") > width  # one more character would not fit


def test_a_caption_that_fits_is_kept_whole():
    font = ImageFont.load_default(size=20)
    assert _fit(font, "the red car", 500.0) == "the red car"


def test_zero_width_characters_past_the_bound_still_show_the_cut():
    font = ImageFont.load_default(size=20)
    text = "a" + "\u200b" * 5000  # zero-width spaces: the whole string measures one glyph wide
    shown = _fit(font, text, 100.0)
    assert shown.endswith("...") and len(shown) < len(text)


def test_a_patch_for_an_8000_character_caption_is_one_line_no_wider_than_the_frame():
    text = (WORDS * 200)[:8_000]
    patch = TextPatch([(text, [(255, 0, 0)])], 640, font_px(360))
    assert patch.shape[1] <= 640 and patch.shape[0] < 3 * font_px(360)
