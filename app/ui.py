"""The annotation page: layout first, then events. The logic lives in ui_handlers."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

import engine
from app import api
from app.media import IMAGE_EXTS, VIDEO_EXTS
from app.studio import Studio
from app.ui_handlers import ADD_COLOR, ERASE_COLOR, STATUS_LABELS, PageLogic, empty_state

SHORTCUTS_JS = (Path(__file__).parent / "shortcuts.js").read_text()
CSS = """
#mask-info { min-height: 2em; }
#shortcut-help { font-size: 0.85em; opacity: 0.8; }
"""
HELP = ("Keys: ←/→ frame · N next expression · S save · Ctrl+Z undo · Ctrl+Shift+Z or Ctrl+Y redo · "
        "O overlay on/off · L outline only · F fill holes")


def build(studio: Studio) -> gr.Blocks:
    logic = PageLogic(studio)
    # delete_cache: served images and API files older than an hour go, hourly.
    with gr.Blocks(title="FlowLabel", delete_cache=(3600, 3600)) as demo:
        state = gr.State(empty_state())
        gr.Markdown(f"## FlowLabel · `{studio.store.path}`")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                upload = gr.File(label="Add media (images, videos)", file_count="multiple",
                                 file_types=sorted(IMAGE_EXTS | VIDEO_EXTS), elem_id="upload")
                media_dd = gr.Dropdown(label="Media", choices=[], elem_id="media")
                expr_radio = gr.Radio(label="Expressions", choices=[], elem_id="expressions")
                with gr.Row():
                    new_text = gr.Textbox(placeholder="the small monkey on the left", show_label=False,
                                          scale=3, elem_id="new-expression")
                    add_expr = gr.Button("Add", scale=1, elem_id="add-expression")
                with gr.Row(equal_height=True):
                    status_btns = {s: gr.Button(STATUS_LABELS[s], size="sm", min_width=60, elem_id=f"status-{s}")
                                   for s in STATUS_LABELS}
                next_expr = gr.Button("Next expression", size="sm", elem_id="next-expression")
                with gr.Accordion("Model", open=False):
                    engines = engine.available_segmenters()
                    engine_dd = gr.Dropdown(label="Engine", choices=engines, value=engines[0] if engines else None,
                                            info=None if engines else "No engine installed yet")
                    with gr.Row():
                        segment_btn = gr.Button("Segment", variant="primary", elem_id="segment")
                        cancel_btn = gr.Button("Cancel", elem_id="cancel")
                export_btn = gr.Button("Export COCO JSON", elem_id="export")
                export_file = gr.File(label="Export", interactive=False, elem_id="export-file")
            with gr.Column(scale=3):
                with gr.Row():
                    prev_btn = gr.Button("◀", size="sm", scale=0, elem_id="prev-frame")
                    frame = gr.Slider(0, 1, value=0, step=1, label="Frame", scale=8, elem_id="frame")
                    next_btn = gr.Button("▶", size="sm", scale=0, elem_id="next-frame")
                info = gr.Markdown(elem_id="mask-info")
                with gr.Row():
                    editor = gr.ImageEditor(
                        label="Correct: magenta brush adds, green brush erases", type="numpy", image_mode="RGBA",
                        sources=[], format="png", transforms=[], elem_id="editor",
                        layers=gr.LayerOptions(allow_additional_layers=False, layers=["mask"]),
                        brush=gr.Brush(colors=[ADD_COLOR, ERASE_COLOR], color_mode="fixed", default_size=6),
                        eraser=False)
                    preview = gr.Image(label="Overlay", interactive=False, format="png", elem_id="preview")
                with gr.Row():
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity", elem_id="opacity")
                    show_overlay = gr.Checkbox(True, label="Overlay", elem_id="show-overlay")
                    outline_only = gr.Checkbox(False, label="Outline only", elem_id="outline-only")
                with gr.Row(equal_height=True):
                    save_btn = gr.Button("Save", variant="primary", elem_id="save")
                    undo_btn = gr.Button("Undo", elem_id="undo")
                    redo_btn = gr.Button("Redo", elem_id="redo")
                    fill_btn = gr.Button("Fill holes", elem_id="fill-holes")
                    specks_btn = gr.Button("Remove specks", elem_id="remove-specks")
                    min_area = gr.Number(64, label="Speck size (px)", precision=0, minimum=0, min_width=90,
                                         elem_id="min-area")
                    clear_btn = gr.Button("Clear", variant="stop", elem_id="clear")
                gr.Markdown(HELP, elem_id="shortcut-help")
        api.register(studio)

        view_in = [state, frame, opacity, outline_only, show_overlay]
        view_out = [state, editor, preview, info]
        expr_update = dict(fn=logic.slider, inputs=[state], outputs=[frame])
        show = dict(fn=logic.view, inputs=view_in, outputs=view_out)

        demo.load(logic.initial, outputs=[state, media_dd, expr_radio]).then(**expr_update).then(**show)
        media_dd.input(logic.pick_media, [media_dd], [state, expr_radio]).then(**expr_update).then(**show)
        expr_radio.input(logic.pick_expression, [state, expr_radio], [state]).then(**expr_update).then(**show)
        next_expr.click(logic.next_expression, [state], [state, media_dd, expr_radio]) \
            .then(**expr_update).then(**show)
        frame.release(**show)
        frame.input(**show, trigger_mode="always_last")
        prev_btn.click(lambda f: max(int(f) - 1, 0), [frame], [frame]).then(**show)
        next_btn.click(lambda f, s: min(int(f) + 1, _last_frame(studio, s)), [frame, state], [frame]).then(**show)
        for control in (opacity, outline_only, show_overlay):
            control.change(**show, show_progress="hidden")

        save_in = [state, frame, editor, opacity, outline_only, show_overlay]
        # Edits run one at a time, in order, so a tab's revision chain never forks.
        edits = dict(concurrency_id="edits", concurrency_limit=1)
        save_btn.click(logic.save, save_in, [state, preview, info], **edits)
        # Autosave: every finished stroke goes to the store; only the latest of a burst runs.
        editor.input(logic.save, save_in, [state, preview, info], trigger_mode="always_last",
                     show_progress="hidden", **edits)
        for btn, op in ((fill_btn, "fill_holes"), (specks_btn, "remove_specks"), (clear_btn, "clear")):
            btn.click(lambda *a, op=op: logic.correct(op, *a), save_in + [min_area], view_out, **edits)
        undo_btn.click(lambda *a: logic.undo_redo(True, *a), view_in, view_out, **edits)
        redo_btn.click(lambda *a: logic.undo_redo(False, *a), view_in, view_out, **edits)
        for status, btn in status_btns.items():
            btn.click(lambda s, status=status: logic.set_status(status, s), [state], [state, expr_radio, media_dd])

        upload.upload(logic.add_media, [upload], [state, media_dd, expr_radio, upload]) \
            .then(**expr_update).then(**show)
        add_expr.click(logic.add_expression, [state, new_text], [state, expr_radio, new_text]).then(**show)
        new_text.submit(logic.add_expression, [state, new_text], [state, expr_radio, new_text]).then(**show)

        seg = segment_btn.click(logic.segment, [state, engine_dd], [state], concurrency_id="engine",
                                concurrency_limit=1).then(**show)
        cancel_btn.click(studio.engines.cancel, cancels=[seg])
        export_btn.click(logic.export, outputs=[export_file])
    return demo


def _last_frame(studio: Studio, state) -> int:
    media_id = (state or {}).get("media_id")
    return studio.store.get_media(media_id)["frames"] - 1 if media_id else 0


def launch_kwargs() -> dict:
    return {"head": f"<script>{SHORTCUTS_JS}</script>", "css": CSS}
