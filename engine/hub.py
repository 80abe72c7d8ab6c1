"""Where model weights are: a local folder, a Hugging Face cache entry, or a repo id already in
the local cache. Never downloads (downloads are explicit: `launch.py models download`).

No torch here: `launch.py models list` and the page's readiness line use it cheaply.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def is_repo_id(text: str) -> bool:
    parts = str(text).split("/")
    return len(parts) == 2 and all(parts) and not str(text).startswith((".", "~", "/"))


def cache_entry(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def resolve(spec, what: str, looks_right: Callable[[Path], bool], need: str) -> Path:
    """The model folder named by `spec`: the folder itself, a cache entry (models--Org--Name:
    its refs/main snapshot, or its only one), or a repo id found in the local cache.

    `what` names the model in messages; `need` says what a right folder holds; `looks_right`
    tells a model folder from anything else. Raises FileNotFoundError saying how to fix it.
    """
    if spec is None or not str(spec).strip():
        raise FileNotFoundError(f"no {what} given: pass a local folder, a Hugging Face cache entry or a "
                                "repo id already downloaded (`launch.py models download NAME`)")
    path = Path(os.path.expanduser(str(spec)))
    if path.is_dir():
        if looks_right(path):
            return path
        if (path / "snapshots").is_dir():
            return _snapshot(path, what, looks_right, need)
        raise FileNotFoundError(f"{path} is not a {what} folder: it needs {need}")
    if is_repo_id(str(spec)):
        entry = cache_entry(str(spec))
        if entry.is_dir():
            return _snapshot(entry, what, looks_right, need)
        raise FileNotFoundError(
            f"{spec!r} is neither a folder nor a repo in the local Hugging Face cache ({hub_cache_dir()}); "
            f"nothing is downloaded implicitly. Fetch it with `python launch.py models download {spec}` "
            "or pass a local folder")
    raise FileNotFoundError(f"{what} folder {path} does not exist; pass a local folder, a Hugging Face "
                            "cache entry or a repo id")


def resolve_file(spec, filename: str, what: str) -> Path:
    """A weights file named by `spec`: the file itself, or `filename` inside a folder, a cache
    entry or a cached repo id (e.g. the release's repo for its FlowRVS_dit_mevis.pth)."""
    path = Path(os.path.expanduser(str(spec)))
    if path.is_file():
        return path
    return resolve(spec, what, lambda p: (p / filename).is_file(), filename) / filename


def _snapshot(entry: Path, what: str, looks_right, need: str) -> Path:
    snapshots = entry / "snapshots"
    ref = entry / "refs" / "main"
    found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        snap = snapshots / ref.read_text().strip()
    elif len(found) == 1:
        snap = found[0]
    elif not found:
        raise FileNotFoundError(f"{entry} is a Hugging Face cache entry without snapshots; the download did "
                                "not finish: run `launch.py models download` again (it resumes)")
    else:
        raise FileNotFoundError(f"{entry} holds several snapshots ({', '.join(p.name for p in found)}) and no "
                                "refs/main; pass the snapshot folder you want")
    if not looks_right(snap):
        raise FileNotFoundError(f"{snap} is not a complete {what} folder: it needs {need}; the download did "
                                "not finish: run `launch.py models download` again (it resumes)")
    return snap


def missing_files(folder: Path, files: Sequence[str]) -> list[str]:
    """Which of `files` (a name, or alternatives joined by '|') are absent from `folder`."""
    return [f for f in files if not any((folder / alt).is_file() for alt in f.split("|"))]
