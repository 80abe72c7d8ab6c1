"""engine.flowrvs.memory: the window heuristic's figures, the fit a GPU run will feed, and that
the shipped (uncalibrated) figures still give the window the pipeline gave before."""
from __future__ import annotations

import pytest

from engine.flowrvs.memory import WINDOW_MEMORY, WindowMemory, fit

HW = (480, 832)          # model pixels of the release's box
ELEM = 2                 # bf16


def test_shipped_figures_are_the_first_guess_and_say_they_are_unmeasured():
    assert WINDOW_MEMORY.measured is None
    unit = HW[0] * HW[1] * ELEM
    free = 40e9
    # the formula the pipeline used before the figures moved here
    before = int((free * 0.7 - 6000 * unit) // (64 * unit))
    assert WINDOW_MEMORY.frames_for(free, HW, ELEM) == before


def test_fit_recovers_a_line_and_the_window_it_allows():
    truth = WindowMemory(fixed_bytes_per_pixel=3000.0, frame_bytes_per_pixel=150.0, fraction=0.85)
    points = [(n, truth.extra_bytes(n, HW, ELEM)) for n in (17, 33, 57, 81)]
    got = fit(points, HW, ELEM, measured="test")
    assert got.fixed_bytes_per_pixel == pytest.approx(3000.0, abs=0.11)
    assert got.frame_bytes_per_pixel == pytest.approx(150.0, abs=0.011)
    assert got.measured == "test" and got.fraction == 0.85
    frames = got.frames_for(20e9, HW, ELEM)
    assert got.extra_bytes(frames, HW, ELEM) <= 0.85 * 20e9 < got.extra_bytes(frames + 1, HW, ELEM)


def test_fit_never_promises_less_than_was_measured():
    points = [(17, 3.0e9), (33, 4.1e9), (57, 6.9e9), (81, 8.0e9)]     # noisy
    got = fit(points, HW, ELEM)
    for n, measured in points:
        assert got.extra_bytes(n, HW, ELEM) >= measured
    # faster than linear growth: no negative fixed cost
    steep = fit([(17, 1.0e9), (81, 9.0e9)], HW, ELEM)
    assert steep.fixed_bytes_per_pixel >= 0
    assert steep.extra_bytes(81, HW, ELEM) >= 9.0e9


def test_fit_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="two or more window lengths"):
        fit([(17, 1e9), (17, 2e9)], HW, ELEM)
    with pytest.raises(ValueError, match="did not grow"):
        fit([(17, 2e9), (33, 1e9)], HW, ELEM)
