"""Left panel: media, expressions (status, filter, adding one); status and review below the
model actions."""
from __future__ import annotations

import gradio as gr

from app.media.files import IMAGE_EXTS, VIDEO_EXTS
from app.project.fill_rule import frame_ranges
from app.studio.studio import EmptyFramesError
from app.ui import confirm_panel, views
from app.ui.views import STATUS_LABELS
from app.ui.wiring import EDITS, on, show, shown


def build(page) -> None:
    page.upload = gr.File(label="Add media (images, videos)", file_count="multiple",
                          file_types=sorted(IMAGE_EXTS | VIDEO_EXTS), elem_id="upload", height=110)
    page.keep_partial = gr.Checkbox(label="Keep what decodes (import a truncated video's frames)", value=False,
                                    elem_id="keep-partial")
    page.media = gr.Dropdown(label="Media", choices=[], elem_id="media")
    page.show_status = gr.Dropdown(label="Show", choices=[("all", "all")] + [(v, k) for k, v in STATUS_LABELS.items()],
                                   value="all", elem_id="status-filter")
    page.expressions = gr.Radio(label="Expressions", choices=[], elem_id="expressions")
    with gr.Row():
        page.new_text = gr.Textbox(placeholder="the small monkey on the left", show_label=False, scale=3,
                                   elem_id="new-expression")
        page.add_expr = gr.Button("Add", scale=1, min_width=50, elem_id="add-expression")


def build_review(page) -> None:
    confirm_panel.build(page)
    with gr.Row(equal_height=True):
        page.status_btns = {s: gr.Button(STATUS_LABELS[s], size="sm", min_width=50, elem_id=f"status-{s}")
                            for s in STATUS_LABELS}
    with gr.Row():
        page.next_expr = gr.Button("Next expression", size="sm", elem_id="next-expression")
        page.review_mode = gr.Checkbox(False, label="Review mode (walk done ones)", elem_id="review-mode")
    with gr.Row():
        page.comment = gr.Textbox(placeholder="why it goes back", show_label=False, scale=3, elem_id="reject-comment")
        page.reject = gr.Button("Reject", size="sm", scale=1, variant="stop", elem_id="reject")


def lists(page, session, status=None) -> dict:
    """The media and expression lists, with the session's choices selected."""
    return {page.media: gr.update(choices=views.media_choices(session), value=session.media_id),
            page.expressions: gr.update(choices=views.expression_choices(session, status),
                                        value=session.expression_id)}


def wire(page) -> None:
    everything = [*shown(page), page.media, page.expressions]

    def load(session):
        session.sent_image = None  # a new page holds no frame yet
        session.reopen()
        return {**show(page, session), **lists(page, session)}

    def pick_media(session, media_id, status):
        session.pick_media(media_id, status)
        return {**show(page, session), **lists(page, session, status)}

    def pick_expression(session, expression_id):
        session.pick_expression(expression_id)
        return show(page, session)

    def filter_expressions(session, status):
        return {page.expressions: gr.update(choices=views.expression_choices(session, status))}

    def next_expression(session, review_mode):
        if not session.next_expression(review_mode):
            gr.Info("Nothing left to review." if review_mode else "Every expression is done.")
        return {**show(page, session), **lists(page, session)}

    def set_status(status, session, show_status, force=False):
        try:
            session.set_status(status, force=force)
        except EmptyFramesError as e:  # say how many and where, and ask
            total = session.media["frames"]
            return confirm_panel.ask(page, "done", f"**{len(e.frames)} of {total} frame(s) have no mask** (for at "
                                     f"least one object): frames {frame_ranges(e.frames)}, grey on the timeline. "
                                     f"Mark it {STATUS_LABELS[status]} anyway?", session, status=status)
        return {**show(page, session), **lists(page, session, show_status), **confirm_panel.hide(page)}

    def reject(session, comment, show_status):
        session.reject(comment)
        return {**show(page, session), **lists(page, session, show_status), page.comment: ""}

    def add_media(session, files, keep_partial):
        added = session.add_media(files, keep_partial)
        gr.Info(f"Added {', '.join(r['name'] for r in added)}")
        return {**show(page, session), **lists(page, session), page.upload: None}

    def add_expression(session, text):
        session.add_expression(text)
        return {**show(page, session), **lists(page, session), page.new_text: ""}

    on(page.demo.load, load, [page.state], everything)
    on(page.media.input, pick_media, [page.state, page.media, page.show_status], everything)
    on(page.show_status.input, filter_expressions, [page.state, page.show_status], [page.expressions])
    on(page.expressions.input, pick_expression, [page.state, page.expressions], shown(page))
    on(page.next_expr.click, next_expression, [page.state, page.review_mode], everything)
    asked = [*everything, *confirm_panel.outputs(page)]
    for status, btn in page.status_btns.items():
        on(btn.click, lambda *a, status=status: set_status(status, *a), [page.state, page.show_status],
           asked, **EDITS)
    on(page.confirm_btns["done"].click,
       lambda pending, session, shown_status: set_status(confirm_panel.confirmed(pending, session, "done")["status"],
                                                         session, shown_status, force=True),
       [page.pending, page.state, page.show_status], asked, **EDITS)
    on(page.reject.click, reject, [page.state, page.comment, page.show_status], [*everything, page.comment], **EDITS)
    on(page.upload.upload, add_media, [page.state, page.upload, page.keep_partial], [*everything, page.upload])
    for trigger in (page.add_expr.click, page.new_text.submit):
        on(trigger, add_expression, [page.state, page.new_text], [*everything, page.new_text], **EDITS)
