"""The page's *Render clip* button: the current expression as an overlay clip (mp4 for a video,
PNG for an image), shown in the page and offered for download.

Self-contained so the page layout can move it: `build_render_panel()` places the components where
it is called (inside a gr.Blocks), `wire_render_panel()` connects them to the page's state.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app.render import job as render_job
from app.serve.api import user_errors
from app.serve.tempfiles import Spool
from app.studio.studio import Studio
from app.ui.session import PageError


@dataclass
class RenderPanel:
    button: gr.Button
    video: gr.Video
    image: gr.Image
    download: gr.DownloadButton


def build_render_panel() -> RenderPanel:
    button = gr.Button("Render clip", size="sm", elem_id="render-clip")
    video = gr.Video(label="Rendered clip", visible=False, interactive=False, elem_id="render-video")
    image = gr.Image(label="Rendered picture", visible=False, interactive=False, type="filepath",
                     elem_id="render-image")
    download = gr.DownloadButton("Download the render", visible=False, size="sm", elem_id="render-download")
    return RenderPanel(button, video, image, download)


def render_for_page(studio: Studio, out_dir: Path, state: dict | None, progress=None) -> tuple:
    """(video, image, download) updates for the tab's current expression."""
    expression_id = (state or {}).get("expression_id")
    if expression_id is None:
        raise PageError("Pick or add an expression first; its masks are what the clip shows.")
    out = out_dir / render_job.default_name(studio.store, expression_id, None, None)
    report = (lambda done, total: progress(done / total, desc=f"frame {done}/{total}")) if progress else None
    result = studio.render_clip(out, expression_id=expression_id, progress=report)
    is_video = result["format"] != "png"
    return (gr.update(value=result["path"] if is_video else None, visible=is_video),
            gr.update(value=None if is_video else result["path"], visible=not is_video),
            gr.update(value=result["path"], visible=True))


def wire_render_panel(panel: RenderPanel, studio: Studio, state: gr.State) -> None:
    spool = Spool("render", keep=2)  # owned by this process: a crashed studio's clips are swept

    @user_errors
    def on_click(session, progress=gr.Progress()):  # session: the page's app.ui.session.Session
        return render_for_page(studio, spool.new_job(), {"expression_id": session.expression_id}, progress)

    panel.button.click(on_click, [state], [panel.video, panel.image, panel.download], concurrency_id="render",
                       concurrency_limit=1)
