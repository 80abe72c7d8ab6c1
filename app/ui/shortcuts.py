"""Keyboard shortcuts: the project's own keymap (action -> key), kept in the project file.

ACTIONS is the one list of actions: what each does, the page element it clicks (or toggles) and
its default key. The page gets it as a table (page_table) in a hidden textbox, which the
page's script (shortcuts.js) reads to turn keys into clicks; the Shortcuts panel
(shortcuts_editor.js) lists it and rebinds a key when the annotator presses one.
"""
from __future__ import annotations

import json
from pathlib import Path

from app.ui.session import PageError

# action: (what it does, the element it clicks, default key)
ACTIONS = {
    "prev_frame": ("Previous frame", "#prev-frame", "ArrowLeft"),
    "next_frame": ("Next frame", "#next-frame", "ArrowRight"),
    "next_expression": ("Next expression", "#next-expression", "n"),
    "save": ("Accept as manual", "#save", "s"),
    "undo": ("Undo", "#undo", "Ctrl+z"),
    "redo": ("Redo", "#redo", "Ctrl+Shift+z"),
    "toggle_overlay": ("Overlay on/off", "#canvas-overlay", "o"),
    "outline_only": ("Outline only", "#canvas-outline", "l"),
    "fill_holes": ("Fill holes", "#fill-holes", "f"),
    "smooth": ("Smooth edges", "#smooth", "m"),
    "propagate_forward": ("Propagate forward", "#propagate-forward", "p"),
    "propagate_backward": ("Propagate backward", "#propagate-backward", "Shift+p"),
    "next_to_check": ("Next frame to check", "#next-to-check", "j"),
    "status_done": ("Mark done", "#status-done", "d"),
    "compare": ("Compare with proposal", "#canvas-compare", "c"),
    **{f"candidate_{i}": (f"Use candidate {i}", f"#candidate-{i}", str(i)) for i in range(1, 6)},
    "tool_brush": ("Brush", "#tool-brush", "b"),
    "tool_eraser": ("Eraser", "#tool-eraser", "e"),
    "tool_box": ("Box", "#tool-box", "r"),
    "tool_points": ("Points", "#tool-points", "t"),
    "tool_polygon": ("Polygon", "#tool-polygon", "g"),
    "tool_pan": ("Pan", "#tool-pan", "h"),
    "brush_smaller": ("Brush smaller", "#brush-smaller", "["),
    "brush_larger": ("Brush larger", "#brush-larger", "]"),
    "zoom_in": ("Zoom in", "#zoom-in", "="),
    "zoom_out": ("Zoom out", "#zoom-out", "-"),
    "zoom_fit": ("Zoom to fit", "#zoom-fit", "0"),
    "zoom_actual": ("Zoom 1:1", "#zoom-actual", "a"),
    "segment": ("Segment", "#segment", "Shift+s"),
}
DEFAULT_SHORTCUTS = {action: key for action, (_, _, key) in ACTIONS.items()}
ALIASES = {"Ctrl+y": "redo", "Ctrl+s": "save", "+": "zoom_in"}  # second keys, unless given to an action
# Keys the canvas keeps for itself: Space plays / pauses (held, it pans), Enter closes a
# polygon, Escape drops what is being drawn.
RESERVED = (" ", "Space", "Enter", "Escape")


def parse_shortcuts(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PageError(f"The shortcuts are not valid JSON ({e.msg} at line {e.lineno}); "
                        'write them as {"action": "key", ...}') from e
    return check_shortcuts(data)


def check_shortcuts(data) -> dict:
    """The project's own keys (action -> key), refused with a message if an action is unknown,
    a key is empty or reserved, or two actions would share a key."""
    unknown = sorted(set(data) - set(DEFAULT_SHORTCUTS)) if isinstance(data, dict) else None
    if unknown is None or unknown or not all(isinstance(v, str) and v for v in data.values()):
        raise PageError(f"Shortcuts map actions to keys; unknown actions: {unknown}. "
                        f"Actions: {', '.join(DEFAULT_SHORTCUTS)}")
    reserved = sorted(k for k in data.values() if k.lower() in {r.lower() for r in RESERVED})
    if reserved:
        raise PageError(f"{', '.join(map(repr, reserved))} belongs to the canvas (Space plays and pans, Enter "
                        "closes a polygon, Escape cancels); choose another key")
    keys = [v.lower() for v in {**DEFAULT_SHORTCUTS, **data}.values()]
    clash = sorted({k for k in keys if keys.count(k) > 1})
    if clash:
        raise PageError(f"These keys are given to more than one action: {', '.join(clash)}")
    return data


def keymap(store) -> str:
    return json.dumps({**DEFAULT_SHORTCUTS, **store.get_setting("shortcuts", {})}, indent=1)


def page_table(store) -> list[dict]:
    """What the page's scripts read: every action with its label, element, default and key."""
    keys = json.loads(keymap(store))
    table = [{"action": action, "label": label, "target": target, "default": default, "key": keys[action]}
             for action, (label, target, default) in ACTIONS.items()]
    return table + [{"action": action, "alias": True, "key": key, "target": ACTIONS[action][1]}
                    for key, action in ALIASES.items()]


def save_keys(store, keys: dict) -> list[dict]:
    """Store the keys that differ from the defaults; the page's new table."""
    check_shortcuts(keys)
    store.set_setting("shortcuts", {a: k for a, k in keys.items() if k != DEFAULT_SHORTCUTS[a]})
    return page_table(store)


EDITOR = """<div class="fl-keys"><div class="fl-keys-msg" role="status"></div><div class="fl-keys-list"></div>
<button class="fl-keys-reset" id="shortcuts-reset">Reset to defaults</button></div>"""
EDITOR_CSS = """
.fl-keys-list { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 2px 14px; font-size: 13px; }
.fl-key-row { display: flex; justify-content: space-between; align-items: center; gap: 6px; }
.fl-key, .fl-keys-reset { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 1px 8px;
  background: var(--button-secondary-background-fill); color: var(--body-text-color); cursor: pointer;
  font-family: var(--font-mono); min-width: 48px; }
.fl-key.fl-changed { font-weight: 700; }
.fl-keys-reset { margin-top: 6px; font-family: inherit; }
.fl-keys-msg { display: none; color: #b91c1c; font-size: 13px; margin-bottom: 4px; }
"""


def build_editor():
    """The Shortcuts panel: a list of actions and keys; its `submit` event carries {"keys": ...}."""
    import gradio as gr
    return gr.HTML(value=None, html_template=EDITOR, css_template=EDITOR_CSS, elem_id="shortcuts-editor",
                   js_on_load=(Path(__file__).parent / "shortcuts_editor.js").read_text(), apply_default_css=False)
