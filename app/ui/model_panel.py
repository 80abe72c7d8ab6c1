"""Model actions next to the expression: Segment with <engine>, progress, cancel, candidates."""
from __future__ import annotations

import gradio as gr

import engine
from app.masks.overlay import object_colour, render_overlay
from app.ui import confirm_panel, views
from app.ui.wiring import EDITS, on, show, shown
from engine import models


def build(page) -> None:
    engines = engine.available_segmenters()
    first = views.engine_for_kind("video", None, engines)
    with gr.Group():
        with gr.Row(equal_height=True):
            page.segment = gr.Button(_label(first), variant="primary", scale=3, elem_id="segment")
            page.cancel = gr.Button("Cancel", scale=1, min_width=60, elem_id="cancel")
        page.engine = gr.Dropdown(label="Engine", choices=engines, value=first, elem_id="engine",
                                  info="the demo engines know only the synthetic shapes world; see README"
                                  if engines else "No engine installed yet")
        page.overwrite = gr.Checkbox(False, label="Model runs and propagation may overwrite manual frames",
                                     elem_id="overwrite-manual")
        with gr.Accordion("Engines and weights", open=False):
            gr.Markdown(weights_markdown(page.studio.weights_status()), elem_id="weights-status")
    page.candidates = gr.Gallery(label="Candidates (click one, or press 1-5)", columns=5, height=120,
                                 visible=False, allow_preview=False, elem_id="candidates")
    with gr.Row(visible=False, elem_id="candidate-buttons") as page.candidate_row:
        page.pick_btns = [gr.Button(str(i), size="sm", min_width=30, elem_id=f"candidate-{i}") for i in range(1, 6)]


def weights_markdown(statuses: list[dict]) -> str:
    """Which engines can run here (the demo engines ship their weights) and, for the others, what
    is missing and what to do; `launch.py models list` says the same at length."""
    lines = ["- **flowrvs-demo, flowseg-demo**: ready (shipped in `assets/`)"]
    for s in statuses:
        use = f" ({models.abilities_text(s['engine'])})"
        if s["ready"]:
            lines.append(f"- **{s['engine']}** `{s['setting']}`{use}: ready")
        else:
            lines.append(f"- **{s['engine']}** `{s['setting']}`{use}: {s['hint'] or 'missing'}")
    return "\n".join(lines + ["", "Without an interactive engine, clicks and boxes use GrabCut and propagation "
                               "uses optical flow (DIS).", "Nothing downloads by itself: `launch.py models download NAME`."])


def _label(engine_name: str | None) -> str:
    return f"Segment with {engine_name}" if engine_name else "Segment (no engine installed)"


def candidate_items(session) -> list | None:
    """Thumbnails of the last model run's top candidates (FlowSeg, SAM 3's instances, or SAM 2's
    alternatives after a click), best first; a video candidate shows the frame it was found on.
    None if none."""
    if session.expression_id is None:
        return None
    found = session.studio.candidates(session.expression_id, session.object_id)
    if found is None:
        return None
    frames = session.studio.candidate_frames(session.expression_id, session.object_id)
    video = session.media["kind"] == "video"
    items = []
    for i, (mask, score, frame) in enumerate(zip(*found, frames)):
        image = session.studio.frame(session.media_id, frame)
        label = f"{i + 1}: {score:.2f}" + (f" (frame {frame})" if video else "")
        items.append((render_overlay(image, mask, opacity=0.5, color=object_colour(0)), label))
    return items


def wire(page) -> None:
    def offered(session) -> dict:
        items = candidate_items(session)
        return {page.candidates: gr.update(value=items, visible=items is not None),
                page.candidate_row: gr.update(visible=items is not None)}

    def engine_choice(session, current):
        kind = session.media["kind"] if session.media_id is not None else None
        name = views.engine_for_kind(kind, current, engine.available_segmenters())
        return {page.engine: gr.update(value=name), page.segment: gr.update(value=_label(name)),
                **offered(session)}

    def segment(session, engine_name, overwrite, progress=gr.Progress(), confirmed=False):
        question = None if confirmed else confirm_panel.rerun_question(session, engine_name, overwrite)
        if question:  # a finished expression: ask first (confirm_panel), run on "Run anyway"
            return confirm_panel.ask(page, "run", question, session)
        result = session.segment(engine_name, overwrite, progress=lambda f, msg="": progress(f, desc=msg),
                                 confirmed=confirmed)
        found = session.studio.candidates(session.expression_id, session.object_id)
        count = len(found[0]) if found is not None else 0
        others = f"; {count - 1} other pick(s) under Candidates (keys 1-{count})" if count > 1 else ""
        gr.Info(f"{engine_name} segmented {result['frames']} frame(s): {result['report'].text()}" + others)
        return {**show(page, session), **offered(session), **confirm_panel.hide(page)}

    def segment_confirmed(session, engine_name, overwrite, pending, progress=gr.Progress()):
        confirm_panel.confirmed(pending, session, "run")
        return segment(session, engine_name, overwrite, progress, confirmed=True)

    def choose(index, session, overwrite):
        session.choose_candidate(index, overwrite)
        return show(page, session)

    def choose_from_gallery(session, overwrite, evt: gr.SelectData):
        return choose(evt.index, session, overwrite)

    candidates_out = [page.candidates, page.candidate_row]
    on(page.media.change, engine_choice, [page.state, page.engine], [page.engine, page.segment, *candidates_out])
    on(page.engine.input, lambda name: gr.update(value=_label(name)), [page.engine], [page.segment])
    runs = [on(trigger, fn, [page.state, page.engine, page.overwrite, *extra],
               [*shown(page), *candidates_out, *confirm_panel.outputs(page)], concurrency_id="engine",
               concurrency_limit=1)
            for trigger, fn, extra in ((page.segment.click, segment, []),
                                       (page.confirm_btns["run"].click, segment_confirmed, [page.pending]))]
    on(page.cancel.click, lambda: page.studio.cancel(), None, None, cancels=runs)
    on(page.candidates.select, choose_from_gallery, [page.state, page.overwrite], shown(page), **EDITS)
    for i, btn in enumerate(page.pick_btns):
        on(btn.click, lambda session, overwrite, i=i: choose(i, session, overwrite), [page.state, page.overwrite],
           shown(page), **EDITS)
    page.show_candidates = offered
