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


def build(studio: Studio) -> gr.Blocks:
    # delete_cache: served files (exports, thumbnails) older than an hour go, hourly.
    with gr.Blocks(title="FlowLabel", fill_width=True, delete_cache=(3600, 3600)) as demo:
        page = SimpleNamespace(studio=studio, demo=demo, state=gr.State(lambda: Session(studio)))
        # Three columns that fit the window (app/ui/layout.css): what to annotate on the left, the
        # canvas and its edits in the centre, messages, the model and the review on the right;
        # settings and rare actions fold away below them.
        with gr.Row(equal_height=False, elem_id="page-row"):
            with gr.Column(scale=1, min_width=250, elem_id="left-column"):
                gr.Markdown(f"**FlowLabel** · `{studio.store.path.name}`")
                media_panel.build(page)
                extras_panel.build_data(page)
                manage_panel.build(page)
            with gr.Column(scale=4, min_width=600, elem_id="centre-column"):
                page.canvas = build_canvas(edit_panel.server_edit(page))
                edit_panel.build(page)
            with gr.Column(scale=1, min_width=270, elem_id="right-column"):
                page.notice = gr.Markdown("Messages show here.", elem_id="notice")
                model_panel.build(page)
                media_panel.build_review(page)
                with gr.Column(elem_id="folded"):  # scrolls on its own: the rest never moves
                    model_panel.build_settings(page)
                    extras_panel.build(page)
        api.register(studio)
        for panel in (media_panel, model_panel, edit_panel, extras_panel, confirm_panel, manage_panel):
            panel.wire(page)
    return demo


def launch_kwargs() -> dict:
    scripts = "".join(f"<script>{(HERE / name).read_text()}</script>" for name in ("shortcuts.js", "layout.js"))
    return {"head": scripts, "css": (HERE / "layout.css").read_text()}
