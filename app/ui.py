"""The annotation page: layout first, then events. The logic lives in ui_handlers."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

import engine
from app import api
from app.api import user_errors
from app.formats import FORMATS
from app.media import IMAGE_EXTS, VIDEO_EXTS
from app.studio import Studio
from app.ui_handlers import (
    ADD_COLOR,
    ERASE_COLOR,
    STATUS_LABELS,
    TOOLS,
    PageLogic,
    empty_state,
    engine_for_kind,
)
from app.ui_render import build_render_panel, wire_render_panel

SHORTCUTS_JS = (Path(__file__).parent / "shortcuts.js").read_text()
CSS = """
#mask-info { min-height: 2em; }
#shortcut-help { font-size: 0.85em; opacity: 0.8; }
#frame-strip img { image-rendering: pixelated; }
"""
HELP = ("Tools: paint in the editor (magenta adds, green erases), or pick Box / Click + / Click − / "
        "Polygon and click on the overlay. Strip above the frames: green manual, blue model, orange "
        "propagated, grey empty. Keys are listed (and can be changed) under Shortcuts.")


def build(studio: Studio) -> gr.Blocks:
    logic = PageLogic(studio)
    # delete_cache: served images and API files older than an hour go, hourly.
    with gr.Blocks(title="FlowLabel", delete_cache=(3600, 3600)) as demo:
        state = gr.State(empty_state())
        gr.Markdown(f"## FlowLabel · `{studio.store.path}`")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                upload = gr.File(label="Add media (images, videos)", file_count="multiple",
                                 file_types=sorted(IMAGE_EXTS | VIDEO_EXTS), elem_id="upload", height=120)
                keep_partial = gr.Checkbox(label="Keep what decodes (import a truncated video's frames)",
                                           value=False, elem_id="keep-partial")
                media_dd = gr.Dropdown(label="Media", choices=[], elem_id="media")
                show = gr.Dropdown(label="Show", choices=[("all", "all")] + [(v, k) for k, v in STATUS_LABELS.items()],
                                   value="all", elem_id="status-filter")
                expr_radio = gr.Radio(label="Expressions", choices=[], elem_id="expressions")
                with gr.Row():
                    new_text = gr.Textbox(placeholder="the small monkey on the left", show_label=False,
                                          scale=3, elem_id="new-expression")
                    add_expr = gr.Button("Add", scale=1, elem_id="add-expression")
                with gr.Row(equal_height=True):
                    status_btns = {s: gr.Button(STATUS_LABELS[s], size="sm", min_width=60, elem_id=f"status-{s}")
                                   for s in STATUS_LABELS}
                render_panel = build_render_panel()
                with gr.Row():
                    next_expr = gr.Button("Next expression", size="sm", elem_id="next-expression")
                    review_mode = gr.Checkbox(False, label="Review mode (walk done ones)", elem_id="review-mode")
                with gr.Row():
                    comment = gr.Textbox(placeholder="why it goes back", show_label=False, scale=3,
                                         elem_id="reject-comment")
                    reject_btn = gr.Button("Reject", size="sm", scale=1, variant="stop", elem_id="reject")
                with gr.Accordion("Model", open=False):
                    engines = engine.available_segmenters()
                    engine_dd = gr.Dropdown(label="Engine", choices=engines,
                                            value=engine_for_kind("video", None, engines),
                                            info="the demo engines know only the synthetic shapes world; "
                                                 "see README" if engines else "No engine installed yet",
                                            elem_id="engine")
                    with gr.Row():
                        segment_btn = gr.Button("Segment", variant="primary", elem_id="segment")
                        cancel_btn = gr.Button("Cancel", elem_id="cancel")
                export_btn = gr.Button("Export COCO JSON", elem_id="export")
                export_file = gr.File(label="Export", interactive=False, elem_id="export-file", height=80)
                with gr.Accordion("Datasets in and out", open=False):
                    fmt = gr.Dropdown([(f"{k}: {v.about}", k) for k, v in FORMATS.items()], value="coco",
                                      label="Format", elem_id="dataset-format")
                    export_any = gr.Button("Export in this format", size="sm", elem_id="export-dataset")
                    src = gr.Textbox(label="Import from (file or folder on this machine)", elem_id="import-src")
                    media_root = gr.Textbox(label="Frames folder, if kept apart (optional)", elem_id="import-media")
                    import_btn = gr.Button("Import", size="sm", elem_id="import-dataset")
                    import_report = gr.Markdown(elem_id="import-report")
            with gr.Column(scale=3):
                with gr.Row():
                    prev_btn = gr.Button("◀", size="sm", scale=0, elem_id="prev-frame")
                    frame = gr.Slider(0, 1, value=0, step=1, label="Frame", scale=8, elem_id="frame")
                    next_btn = gr.Button("▶", size="sm", scale=0, elem_id="next-frame")
                strip = gr.Image(show_label=False, interactive=False, height=24, container=False,
                                 elem_id="frame-strip", buttons=[])
                with gr.Row():
                    count = gr.Number(0, label="Frames (0 = to the end)", precision=0, minimum=0, min_width=90,
                                      elem_id="propagate-count")
                    back_btn = gr.Button("◀ Propagate", size="sm", elem_id="propagate-backward")
                    fwd_btn = gr.Button("Propagate ▶", size="sm", elem_id="propagate-forward")
                    check_btn = gr.Button("Next frame to check", size="sm", elem_id="next-to-check")
                    overwrite = gr.Checkbox(False, label="Model runs and propagation may overwrite manual frames",
                                            elem_id="overwrite-manual")
                info = gr.Markdown(elem_id="mask-info")
                with gr.Row():
                    objects = gr.Radio(label="Objects of this expression", choices=[], elem_id="objects", scale=3)
                    add_obj = gr.Button("Add object", size="sm", elem_id="add-object", scale=1)
                    rm_obj = gr.Button("Remove object", size="sm", elem_id="remove-object", scale=1)
                with gr.Row():
                    editor = gr.ImageEditor(
                        label="Correct: magenta brush adds, green brush erases", type="numpy", image_mode="RGBA",
                        sources=[], format="png", transforms=[], elem_id="editor",
                        layers=gr.LayerOptions(allow_additional_layers=False, layers=["mask"]),
                        brush=gr.Brush(colors=[ADD_COLOR, ERASE_COLOR], color_mode="fixed", default_size=6),
                        eraser=False)
                    preview = gr.Image(label="Overlay (click here with Box / Click / Polygon)", interactive=False,
                                       elem_id="preview")
                candidates = gr.Gallery(label="Candidates (click one, or press 1-5, to use it)", columns=5,
                                        height=160, visible=False, allow_preview=False, elem_id="candidates")
                with gr.Row(visible=True, elem_id="candidate-buttons"):
                    pick_btns = [gr.Button(f"Use {i}", size="sm", min_width=40, elem_id=f"candidate-{i}")
                                 for i in range(1, 6)]
                with gr.Row(equal_height=True):
                    tool = gr.Radio(TOOLS, value="Paint", label="Tool", elem_id="tool", scale=3)
                    close_poly = gr.Button("Close polygon", size="sm", elem_id="close-polygon", scale=1)
                with gr.Row():
                    opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity", elem_id="opacity")
                    show_overlay = gr.Checkbox(True, label="Overlay", elem_id="show-overlay")
                    outline_only = gr.Checkbox(False, label="Outline only", elem_id="outline-only")
                    compare = gr.Checkbox(False, label="Compare with proposal", elem_id="compare")
                with gr.Row(equal_height=True):
                    save_btn = gr.Button("Save", variant="primary", elem_id="save")
                    undo_btn = gr.Button("Undo", elem_id="undo")
                    redo_btn = gr.Button("Redo", elem_id="redo")
                    fill_btn = gr.Button("Fill holes", elem_id="fill-holes")
                    smooth_btn = gr.Button("Smooth edges", elem_id="smooth")
                    specks_btn = gr.Button("Remove specks", elem_id="remove-specks")
                    min_area = gr.Number(64, label="Speck size (px)", precision=0, minimum=0, min_width=90,
                                         elem_id="min-area")
                    clear_btn = gr.Button("Clear", variant="stop", elem_id="clear")
                gr.Markdown(HELP, elem_id="shortcut-help")
                with gr.Accordion("History", open=False):
                    history = gr.Dataframe(headers=["revision", "action", "state", "time (UTC)", "changes"],
                                           interactive=False, elem_id="history")
                with gr.Accordion("Proposal vs correction", open=False):
                    agree_btn = gr.Button("Measure", size="sm", elem_id="measure-agreement")
                    agree_text = gr.Markdown(elem_id="agreement")
                    agree_plot = gr.LinePlot(x="frame", y="iou", color="source", y_lim=[0, 1],
                                             title="IoU between proposal and final mask", elem_id="agreement-plot")
                with gr.Accordion("Shortcuts", open=False):
                    shortcuts = gr.Code(language="json", label="action: key (Ctrl+, Shift+, Alt+ allowed)",
                                        interactive=True, elem_id="shortcuts-editor")
                    save_keys = gr.Button("Save shortcuts", size="sm", elem_id="save-shortcuts")
                # The keymap the page's script reads; kept in the DOM, not shown.
                keymap = gr.Textbox(visible="hidden", elem_id="shortcut-map")
        api.register(studio)
        wire_render_panel(render_panel, studio, state)

        disp = [opacity, outline_only, show_overlay, compare]
        view_in = [state, frame, *disp]
        view_out = [state, editor, preview, info, strip, history, objects]
        slider_update = dict(fn=logic.slider, inputs=[state], outputs=[frame])
        show_frame = dict(fn=logic.view, inputs=view_in, outputs=view_out)
        edits = dict(concurrency_id="edits", concurrency_limit=1)  # one at a time: revisions never fork

        demo.load(logic.initial, outputs=[state, media_dd, expr_radio]).then(**slider_update).then(**show_frame)
        state.change(logic.engine_choice, [state, engine_dd], [engine_dd], show_progress="hidden")
        demo.load(logic.shortcuts, outputs=[shortcuts]).then(lambda s: s, [shortcuts], [keymap])
        media_dd.input(logic.pick_media, [media_dd, show], [state, expr_radio]).then(**slider_update) \
            .then(**show_frame)
        show.input(logic.filter_expressions, [state, show], [expr_radio])
        expr_radio.input(logic.pick_expression, [state, expr_radio], [state]).then(**slider_update) \
            .then(**show_frame)
        objects.input(logic.pick_object, [state, objects], [state]).then(**show_frame)
        next_expr.click(logic.next_expression, [state, review_mode], [state, media_dd, expr_radio]) \
            .then(**slider_update).then(**show_frame)
        frame.release(**show_frame)
        frame.input(**show_frame, trigger_mode="always_last")
        prev_btn.click(lambda f: max(int(f) - 1, 0), [frame], [frame]).then(**show_frame)
        next_btn.click(lambda f, s: min(int(f) + 1, _last_frame(studio, s)), [frame, state], [frame]) \
            .then(**show_frame)
        check_btn.click(logic.next_to_check, [state, frame], [frame]).then(**show_frame)
        for control in disp:
            control.change(**show_frame, show_progress="hidden")

        save_in = [state, frame, editor, *disp]
        save_btn.click(logic.save, save_in, [state, preview, info, strip], **edits)
        # Autosave: every finished stroke goes to the store; only the latest of a burst runs.
        editor.input(logic.autosave, save_in, [state, preview, info, strip], trigger_mode="always_last",
                     show_progress="hidden", **edits)
        for btn, op in ((fill_btn, "fill_holes"), (specks_btn, "remove_specks"), (clear_btn, "clear"),
                        (smooth_btn, "smooth")):
            btn.click(lambda *a, op=op: logic.correct(op, *a), save_in + [min_area], view_out, **edits)
        preview.select(logic.click, [tool, *save_in], view_out, **edits) \
            .then(logic.candidate_gallery, [state], [candidates])  # SAM 2's alternatives after a click
        close_poly.click(logic.close_polygon, save_in, view_out, **edits)
        undo_btn.click(lambda *a: logic.undo_redo(True, *a), view_in, view_out, **edits)
        redo_btn.click(lambda *a: logic.undo_redo(False, *a), view_in, view_out, **edits)
        add_obj.click(logic.add_object, view_in, view_out, **edits)
        rm_obj.click(logic.remove_object, view_in, view_out, **edits)
        for direction, btn in (("forward", fwd_btn), ("backward", back_btn)):
            btn.click(lambda *a, d=direction: logic.propagate(d, *a), [state, frame, count, overwrite, *disp], view_out,
                      **edits)

        for status, btn in status_btns.items():
            btn.click(lambda s, f, status=status: logic.set_status(status, s, f), [state, show],
                      [state, expr_radio, media_dd], **edits)
        reject_btn.click(logic.reject, [state, comment, show], [state, expr_radio, media_dd, comment], **edits) \
            .then(**show_frame)
        save_keys.click(logic.save_shortcuts, [shortcuts], [shortcuts, keymap])
        agree_btn.click(user_errors(logic.agreement), [state], [agree_plot, agree_text])

        upload.upload(logic.add_media, [upload, keep_partial], [state, media_dd, expr_radio, upload]) \
            .then(**slider_update).then(**show_frame)
        for trigger in (add_expr.click, new_text.submit):
            trigger(logic.add_expression, [state, new_text], [state, expr_radio, new_text]).then(**slider_update) \
                .then(**show_frame)

        seg = segment_btn.click(logic.segment, [state, engine_dd, overwrite], [state], concurrency_id="engine",
                                concurrency_limit=1).then(**show_frame) \
            .then(logic.candidate_gallery, [state], [candidates])
        candidates.select(logic.choose_from_gallery, view_in, view_out, **edits)
        for i, btn in enumerate(pick_btns):
            btn.click(lambda *a, i=i: logic.choose_candidate(i, *a), view_in, view_out, **edits)
        cancel_btn.click(studio.cancel, cancels=[seg])
        export_btn.click(logic.export, outputs=[export_file])
        export_any.click(logic.export_dataset, [fmt], [export_file])
        import_btn.click(logic.import_dataset, [fmt, src, media_root], [import_report, media_dd], **edits)
    return demo


def _last_frame(studio: Studio, state) -> int:
    media_id = (state or {}).get("media_id")
    return studio.store.get_media(media_id)["frames"] - 1 if media_id else 0


def launch_kwargs() -> dict:
    return {"head": f"<script>{SHORTCUTS_JS}</script>", "css": CSS}
