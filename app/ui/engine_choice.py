"""Which engine the page offers on its big *Segment* button.

The shipped demo engines know only the synthetic shapes world: on real media they paint
confident garbage. So they are the default only on the demo media (assets/demo, recognised by
content hash); elsewhere the button names a real engine whose weights are set up, and when there
is none it says what to install instead of running a toy. A demo engine stays selectable in the
*Engine* list, labelled as a toy.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import engine
from engine import models

DEMO_ASSETS = Path(__file__).resolve().parent.parent.parent / "assets" / "demo"
# The demo engine offered first for each kind of demo media.
DEMO_ENGINES = {"video": "flowrvs-demo", "image": "flowseg-demo"}
TOY = "toy: synthetic shapes only"
WEIGHTS_PANEL = "Engines and weights"
NO_ENGINE = "No real engine for {kind}s here: the note under Segment says what to install."


@functools.cache
def demo_hashes() -> frozenset[str]:
    """The content hashes of the demo media (a project stores each media's sha256)."""
    files = [p for p in DEMO_ASSETS.iterdir() if p.suffix != ".json"] if DEMO_ASSETS.is_dir() else []
    return frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)


def is_demo_media(media: dict | None) -> bool:
    return media is not None and media.get("sha256") in demo_hashes()


def is_toy(name: str | None) -> bool:
    return name in DEMO_ENGINES.values()


def ready_engines(engines: list[str], weights_status: list[dict]) -> set[str]:
    """Real engines that can run here: those of the weights catalog whose required weights are all
    here and configured (Studio.weights_status), and plugins, which need nothing from the catalog."""
    optional = {(w.engine, w.setting) for w in models.CATALOG if w.optional}
    needed: dict[str, bool] = {}
    for s in weights_status:
        if (s["engine"], s["setting"]) not in optional:
            needed[s["engine"]] = needed.get(s["engine"], True) and s["ready"]
    catalogued = {w.engine for w in models.CATALOG}
    return ({name for name, ready in needed.items() if ready}
            | {e for e in engines if e not in catalogued and not is_toy(e)})


def choose(kind: str | None, current: str | None, engines: list[str], demo_media: bool,
           ready: set[str]) -> str | None:
    """The engine for this media: the annotator's own real choice if it fits; the demo engine on
    the demo media; else the first ready real engine that fits; else None (nothing set up)."""
    fits = [e for e in engines if kind is None or kind in engine.engine_info(e).kinds]
    if current in fits and not is_toy(current):
        return current
    if demo_media and DEMO_ENGINES.get(kind) in fits:
        return DEMO_ENGINES[kind]
    return next((e for e in fits if not is_toy(e) and e in ready), None)


def button_label(name: str | None) -> str:
    if name is None:
        return "Segment (no engine yet)"
    return f"Segment with {name}" + (" (toy)" if is_toy(name) else "")


def engine_choices(engines: list[str]) -> list[tuple[str, str]]:
    return [(f"{e} ({TOY})" if is_toy(e) else e, e) for e in engines]


def install_hint(kind: str | None, weights_status: list[dict]) -> str:
    """What to install so that a real engine segments this kind of media (one line)."""
    fits = {e for e in engine.available_segmenters() if kind is None or kind in engine.engine_info(e).kinds}
    names = sorted({s["hint"].split("models download ")[1].split()[0] for s in weights_status
                    if s["engine"] in fits and "models download " in s["hint"]})
    return (f"No real engine for {kind or 'this media'}s here. Install one with `launch.py models download NAME` "
            f"({', '.join(names) or 'see the list'}; `launch.py models list` says what each needs) and restart "
            f"with its flags. The demo engines, toys for synthetic shapes, are under {WEIGHTS_PANEL}.")


def missing_weights(name: str) -> str:
    """The short message for an engine whose weights are missing: the panel says the rest."""
    return (f"{name} has no weights here: the {WEIGHTS_PANEL} panel (right column) says what to download "
            f"and the flags to pass; so does `launch.py models list`.")
