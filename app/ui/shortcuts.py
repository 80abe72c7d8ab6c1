"""Keyboard shortcuts: the project's own keymap (action -> key), kept in the project file.

The page's script (shortcuts.js) reads the keymap from a hidden textbox and, for each action,
clicks the button (or toggles the box) it names.
"""
from __future__ import annotations

import json

from app.ui.session import PageError

DEFAULT_SHORTCUTS = {
    "prev_frame": "ArrowLeft", "next_frame": "ArrowRight", "next_expression": "n", "save": "s",
    "undo": "Ctrl+z", "redo": "Ctrl+Shift+z", "toggle_overlay": "o", "outline_only": "l",
    "fill_holes": "f", "smooth": "m", "propagate_forward": "p", "propagate_backward": "Shift+p",
    "next_to_check": "j", "status_done": "d", "compare": "c",
    **{f"candidate_{i}": str(i) for i in range(1, 6)},
    "tool_brush": "b", "tool_eraser": "e", "tool_box": "r", "tool_points": "t", "tool_polygon": "g",
    "tool_pan": "h", "brush_smaller": "[", "brush_larger": "]", "zoom_in": "=", "zoom_out": "-",
    "zoom_fit": "0", "zoom_actual": "a", "segment": "Shift+s",
}


def parse_shortcuts(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PageError(f"The shortcuts are not valid JSON ({e.msg} at line {e.lineno}); "
                        'write them as {"action": "key", ...}') from e
    unknown = sorted(set(data) - set(DEFAULT_SHORTCUTS)) if isinstance(data, dict) else None
    if unknown is None or unknown or not all(isinstance(v, str) and v for v in data.values()):
        raise PageError(f"Shortcuts map actions to keys; unknown actions: {unknown}. "
                        f"Actions: {', '.join(DEFAULT_SHORTCUTS)}")
    keys = [v.lower() for v in {**DEFAULT_SHORTCUTS, **data}.values()]
    clash = sorted({k for k in keys if keys.count(k) > 1})
    if clash:
        raise PageError(f"These keys are given to more than one action: {', '.join(clash)}")
    return data


def keymap(store) -> str:
    return json.dumps({**DEFAULT_SHORTCUTS, **store.get_setting("shortcuts", {})}, indent=1)
