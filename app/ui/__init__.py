"""The annotation page: one large canvas in the centre, media and expressions on the left.

Each panel module has build(page) (layout) and wire(page) (events); `page` is a namespace of
the components every panel may read or update. Handlers are plain functions of a Session
returning dicts keyed by component; `wiring.on` is the one place user errors become gr.Error.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from app.serve import api
from app.studio.studio import Studio
from app.ui import confirm_panel, edit_panel, extras_panel, manage_panel, media_panel, model_panel
from app.ui.canvas import build_canvas
from app.ui.session import Session

HERE = Path(__file__).parent
CSS = """
#mask-info { min-height: 2em; }
#left-column { gap: 8px; }
.gradio-container { padding-top: 6px !important; }
"""


def build(studio: Studio) -> gr.Blocks:
    # delete_cache: served files (exports, thumbnails) older than an hour go, hourly.
    with gr.Blocks(title="FlowLabel", fill_width=True, delete_cache=(3600, 3600)) as demo:
        page = SimpleNamespace(studio=studio, demo=demo, state=gr.State(lambda: Session(studio)))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300, elem_id="left-column"):
                gr.Markdown(f"**FlowLabel** · `{studio.store.path.name}`")
                media_panel.build(page)
                model_panel.build(page)
                media_panel.build_review(page)
                extras_panel.build_data(page)
                manage_panel.build(page)
            with gr.Column(scale=4, min_width=600):
                page.canvas = build_canvas(edit_panel.server_edit(page))
                edit_panel.build(page)
                extras_panel.build(page)
        api.register(studio)
        for panel in (media_panel, model_panel, edit_panel, extras_panel, confirm_panel, manage_panel):
            panel.wire(page)
    return demo


def launch_kwargs() -> dict:
    return {"head": f"<script>{(HERE / 'shortcuts.js').read_text()}</script>", "css": CSS}
