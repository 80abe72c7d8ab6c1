"""The frame canvas: a gr.HTML component whose browser side (canvas.js) draws the frame and
the masks, zooms and pans, and turns pointer input into small edit events.

Its template never mentions the value, so Gradio never re-renders it: the <canvas> elements
keep their pixels, and the script redraws when the value changes (watch). Strokes, tools,
frame steps and the clicks of the buttons in edit_panel.QUEUED_BUTTONS (undo, redo, corrections)
reach the server one after another, in order, through the server function canvas_edit (no
queue), whose answer also carries the line under the canvas (#mask-info: expression, status,
frame, mask, revision), so the whole view changes at once; Play fetches frames ahead through
canvas_frames. Events it raises: edited (after an edit), pick_object (each carries a dict, read
through gr.EventData).
"""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from app.ui.edit_panel import QUEUED_BUTTONS
from app.ui.playback import MAX_RUN

HERE = Path(__file__).parent

TOOL_BUTTONS = [("brush", "Brush", "B"), ("eraser", "Eraser", "E"), ("box", "Box", "R"),
                ("points", "Points ± (Shift: −)", "T"), ("polygon", "Polygon", "G"), ("pan", "Pan", "H")]

PLAY_SPEEDS = (0.25, 0.5, 1, 1.5, 2)

TEMPLATE = """
<div class="fl-root" data-queued='QUEUED' data-play-run="PLAY_RUN">
  <div class="fl-toolbar">
    <span class="fl-group">""" + "".join(
    f'<button id="tool-{t}" data-tool="{t}" title="{label} ({key})">{label}</button>'
    for t, label, key in TOOL_BUTTONS) + """</span>
    <span class="fl-group" title="brush size ([ and ])">
      <button id="brush-smaller">−</button><input id="brush-size" type="range" min="1" max="60" value="6">
      <button id="brush-larger">+</button><span class="fl-size-label"></span>
    </span>
    <button id="close-polygon" title="Close the polygon (Enter, or double-click)">Close polygon</button>
    <span class="fl-group">
      <label title="overlay opacity">opacity <input id="canvas-opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label>
      <label><input id="canvas-overlay" type="checkbox" checked> overlay</label>
      <label><input id="canvas-outline" type="checkbox"> outline only</label>
      <label><input id="canvas-compare" type="checkbox"> compare with proposal</label>
    </span>
    <span class="fl-group">
      <button id="zoom-out" title="zoom out (-)">−</button><span class="fl-zoom-label">100%</span>
      <button id="zoom-in" title="zoom in (=)">+</button>
      <button id="zoom-fit" title="fit (0)">fit</button><button id="zoom-actual" title="1:1 pixels (A)">1:1</button>
    </span>
  </div>
  <div class="fl-stage">
    <canvas class="fl-base"></canvas><canvas class="fl-ui"></canvas><div class="fl-message"></div>
    <div class="fl-notice" role="alert"></div>
  </div>
  <div class="fl-under"><span class="fl-legend"></span><span class="fl-hover"></span></div>
  <div class="fl-timeline-row">
    <button id="play" title="play / pause (Space)">Play</button>
    <select id="play-speed" title="playback speed">""" + "".join(
    f'<option value="{s}"{" selected" if s == 1 else ""}>{s:g}x</option>' for s in PLAY_SPEEDS) + """</select>
    <button id="prev-frame" title="previous frame">◀</button><canvas class="fl-timeline"></canvas>
    <button id="next-frame" title="next frame">▶</button><span class="fl-frame-label"></span>
  </div>
  <div id="mask-info" class="fl-info"></div>
</div>
"""


def build_canvas(server_functions: list) -> gr.HTML:
    """server_functions: those the browser calls, canvas_edit(data) -> the canvas's new value
    (strokes, tools, queued edits, frame steps) and canvas_frames(data) -> frames to play."""
    template = TEMPLATE.replace("QUEUED", json.dumps(QUEUED_BUTTONS)).replace("PLAY_RUN", str(MAX_RUN))
    return gr.HTML(value=None, html_template=template, css_template=(HERE / "canvas.css").read_text(),
                   js_on_load=(HERE / "canvas.js").read_text(), elem_id="canvas", apply_default_css=False,
                   server_functions=server_functions)
