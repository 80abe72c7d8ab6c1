"""Panels kept out of the way, folded: render clip, history, proposal vs correction, shortcuts
(right column); export and datasets in/out (left column)."""
from __future__ import annotations

import json

import gradio as gr

from app.formats import FORMATS
from app.serve.tempfiles import Spool
from app.ui import shortcuts, views
from app.ui.render_panel import build_render_panel, wire_render_panel
from app.ui.session import PageError
from app.ui.wiring import EDITS, on


def build(page) -> None:
    with gr.Accordion("Render clip", open=False, elem_id="render-panel"):
        page.render = build_render_panel()
    with gr.Accordion("History", open=False) as page.history_box:
        page.history = gr.Dataframe(headers=["revision", "action", "state", "time (UTC)", "changes"],
                                    interactive=False, elem_id="history")
    with gr.Accordion("Proposal vs correction", open=False):
        page.agree_btn = gr.Button("Measure", size="sm", elem_id="measure-agreement")
        page.agree_text = gr.Markdown(elem_id="agreement")
        page.agree_plot = gr.LinePlot(x="frame", y="iou", color="source", y_lim=[0, 1],
                                      title="IoU between proposal and final mask", elem_id="agreement-plot")
    with gr.Accordion("Shortcuts", open=False):
        page.shortcuts = shortcuts.build_editor()
    # The table of actions and keys the page's script reads; kept in the DOM, not shown.
    page.keymap = gr.Textbox(visible="hidden", elem_id="shortcut-map")


def build_data(page) -> None:
    with gr.Accordion("Export, datasets in and out", open=False):
        page.export = gr.Button("Export COCO JSON", size="sm", elem_id="export")
        page.fmt = gr.Dropdown([(f"{k}: {v.about}", k) for k, v in FORMATS.items()], value="coco",
                               label="Format", elem_id="dataset-format")
        page.export_any = gr.Button("Export in this format", size="sm", elem_id="export-dataset")
        page.export_file = gr.File(label="Export", interactive=False, elem_id="export-file", height=80)
        page.src = gr.Textbox(label="Import from (file or folder on this machine)", elem_id="import-src")
        page.media_root = gr.Textbox(label="Frames folder, if kept apart (optional)", elem_id="import-media")
        page.import_btn = gr.Button("Import", size="sm", elem_id="import-dataset")
        page.import_report = gr.Markdown(elem_id="import-report")
        gr.Markdown("The same from scripts: [the API](?view=api), `launch.py --help`.")


def agreement(session):
    """Plot data: IoU between the proposal and the final mask, per frame, and a summary line."""
    import pandas as pd
    rows = session.studio.proposal_agreement(session.require(), session.object_id)
    if not rows:
        return pd.DataFrame({"frame": [], "iou": [], "source": []}), \
            "No model or propagation proposal for this object yet."
    table = pd.DataFrame(rows)
    moved = int((table["iou"] < 0.99).sum())
    return table, (f"Mean IoU between proposal and final mask: {table['iou'].mean():.3f} over {len(table)} "
                   f"frame(s); the annotator changed {moved} of them.")


def export_coco(studio) -> str:
    out = studio.store.path.with_name(studio.store.path.stem + "_coco.json")
    return str(studio.export_coco(out))


def export_dataset(studio, fmt, spool: Spool) -> str:
    path, report = studio.export_dataset(fmt, spool.new_job())
    for warning in getattr(report, "warnings", []) or []:
        gr.Warning(str(warning))
    return str(path)


def import_dataset(studio, fmt, src, media_root) -> str:
    if not (src or "").strip():
        raise PageError("Type the path of the dataset (file or folder) on this machine.")
    return studio.import_dataset(fmt, src.strip(), (media_root or "").strip() or None).summary()


def wire(page) -> None:
    from app.ui import media_panel  # the lists it refreshes after an import

    studio = page.studio
    exports = Spool("export", keep=2)  # dataset exports, until Gradio has copied them

    def save_keys(evt: gr.EventData):
        table = shortcuts.save_keys(studio.store, evt._data.get("keys") or {})
        gr.Info("Shortcuts saved in this project.")
        return {page.shortcuts: table, page.keymap: json.dumps(table)}

    def keys_table():
        table = shortcuts.page_table(studio.store)
        return table, json.dumps(table)

    def import_and_list(session, fmt, src, media_root):
        report = import_dataset(studio, fmt, src, media_root)
        return {page.import_report: report, **media_panel.lists(page, session)}

    on(page.demo.load, keys_table, None, [page.shortcuts, page.keymap])
    on(page.history_box.expand, views.history, [page.state], [page.history])
    on(page.shortcuts.submit, save_keys, None, [page.shortcuts, page.keymap])
    on(page.agree_btn.click, agreement, [page.state], [page.agree_plot, page.agree_text])
    on(page.export.click, lambda: export_coco(studio), None, [page.export_file])
    on(page.export_any.click, lambda fmt: export_dataset(studio, fmt, exports), [page.fmt], [page.export_file])
    wire_render_panel(page.render, studio, page.state)
    on(page.import_btn.click, import_and_list, [page.state, page.fmt, page.src, page.media_root],
       [page.import_report, page.media, page.expressions], **EDITS)
