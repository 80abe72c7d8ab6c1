"""Model actions: Segment with <engine>, progress, cancel, candidates; the engine and its weights
(folded)."""
from __future__ import annotations

import json

import gradio as gr

import engine
from app.masks.overlay import object_colour, render_overlay
from app.ui import confirm_panel, shortcuts
from app.ui import engine_choice as choice
from app.ui.session import PageError
from app.ui.wiring import EDITS, on, show, shown
from engine import models

# The keymap's candidate actions: one pick button and one key each.
PICKS = [a for a in shortcuts.DEFAULT_SHORTCUTS if a.startswith("candidate_")]


def build(page) -> None:
    """Segment, what to install when no engine is set up, and the candidates strip."""
    with gr.Row(equal_height=True):
        page.segment = gr.Button(choice.button_label(None), variant="primary", scale=3, elem_id="segment")
        page.cancel = gr.Button("Cancel", scale=1, min_width=60, elem_id="cancel")
    page.engine_hint = gr.Markdown(visible=False, elem_id="engine-hint")
    page.candidates = gr.Gallery(label="Candidates", columns=len(PICKS), height=96, visible=False,
                                 allow_preview=False, elem_id="candidates")
    with gr.Row(visible=False, elem_id="candidate-buttons") as page.candidate_row:
        page.pick_btns = [gr.Button(str(i), size="sm", min_width=30, elem_id=f"candidate-{i}")
                          for i in range(1, len(PICKS) + 1)]


def build_settings(page) -> None:
    """The engine list, overwrite, and every engine's weights: folded (the errors point here)."""
    engines = engine.available_segmenters()
    with gr.Accordion(choice.WEIGHTS_PANEL, open=False, elem_id="engines-and-weights"):
        page.engine = gr.Dropdown(label="Engine", choices=choice.engine_choices(engines), value=None,
                                  elem_id="engine", info="toys know only the synthetic shapes world; see README"
                                  if engines else "No engine installed yet")
        page.overwrite = gr.Checkbox(False, label="Model runs and propagation may overwrite manual frames",
                                     elem_id="overwrite-manual")
        gr.Markdown(weights_markdown(page.studio.weights_status()), elem_id="weights-status")


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


def candidate_keys(store, count: int) -> str:
    """The keys that pick the first `count` candidates, from the project's keymap: the one source
    for the strip's label and the notice after a run."""
    keymap = json.loads(shortcuts.keymap(store))
    keys = [keymap[action] for action in PICKS[:count]]
    if count > 1 and keys == [str(i) for i in range(1, count + 1)]:
        return f"{keys[0]}-{keys[-1]}"
    return ", ".join(keys)


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
        count = min(len(items or []), len(PICKS))
        label = f"Candidates (click one, or press {candidate_keys(session.store, count)})" if count else "Candidates"
        return {page.candidates: gr.update(value=items, visible=items is not None, label=label),
                page.candidate_row: gr.update(visible=items is not None),
                **{btn: gr.update(visible=i < count) for i, btn in enumerate(page.pick_btns)}}

    def engine_for_media(session, media_id, current):
        """Read from the media list itself: its change can run before the tab's session has moved."""
        media = page.studio.store.get_media(media_id) if media_id is not None else None
        kind = media["kind"] if media is not None else None
        statuses, engines = page.studio.weights_status(), engine.available_segmenters()
        name = choice.choose(kind, current, engines, choice.is_demo_media(media),
                             choice.ready_engines(engines, statuses))
        hint = choice.install_hint(kind, statuses) if name is None and media is not None else ""
        return {page.engine: gr.update(value=name), page.segment: gr.update(value=choice.button_label(name)),
                page.engine_hint: gr.update(value=hint, visible=bool(hint)),
                **(offered(session) if session.media_id == media_id else
                   {page.candidates: gr.update(visible=False), page.candidate_row: gr.update(visible=False)})}

    def picked_engine(session, name):
        media = session.media
        hint = choice.install_hint(media["kind"], page.studio.weights_status()) if not name and media else ""
        return {page.segment: gr.update(value=choice.button_label(name)),
                page.engine_hint: gr.update(value=hint, visible=bool(hint))}

    def segment(session, engine_name, overwrite, progress=gr.Progress(), confirmed=False):
        if not engine_name and session.media is not None:
            raise PageError(choice.NO_ENGINE.format(kind=session.media["kind"]))
        question = None if confirmed else confirm_panel.rerun_question(session, engine_name, overwrite)
        if question:  # a finished expression: ask first (confirm_panel), run on "Run anyway"
            return confirm_panel.ask(page, "run", question, session)
        try:
            result = session.segment(engine_name, overwrite, progress=lambda f, msg="": progress(f, desc=msg),
                                     confirmed=confirmed)
        except engine.EngineNotConfigured as e:  # the flags at length are in the panel
            raise PageError(choice.missing_weights(engine_name)) from e
        found = session.studio.candidates(session.expression_id, session.object_id)
        count = len(found[0]) if found is not None else 0
        others = (f"; {count - 1} other pick(s) under Candidates (keys "
                  f"{candidate_keys(session.store, min(count, len(PICKS)))})" if count > 1 else "")
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

    candidates_out = [page.candidates, page.candidate_row, *page.pick_btns]
    on(page.media.change, engine_for_media, [page.state, page.media, page.engine],
       [page.engine, page.segment, page.engine_hint, *candidates_out])
    on(page.engine.input, picked_engine, [page.state, page.engine], [page.segment, page.engine_hint])
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
    page.show_candidates, page.candidate_outputs = offered, candidates_out
