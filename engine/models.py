"""Which weights each engine needs, whether they are here, and fetching them on request.

Torch-free (the CLI's `models list` and the page read it). Nothing downloads implicitly: only
`download()` (`launch.py models download NAME`) touches the network, through huggingface_hub,
into its standard cache, resumable, with its progress bars.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine import hub
from engine.registry import model_path

# The studio's names for the repos it knows -> (repo id, files to fetch or None for all).
NAMES = {
    "sam2.1-tiny": ("facebook/sam2.1-hiera-tiny", None),
    "sam2.1-small": ("facebook/sam2.1-hiera-small", None),
    "sam2.1-base-plus": ("facebook/sam2.1-hiera-base-plus", None),
    "sam2.1-large": ("facebook/sam2.1-hiera-large", None),
    "edgetam": ("yonigozlan/EdgeTAM-hf", None),
    "wan2.1-t2v-1.3b": ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", None),
    # The release's current DiT and tuned VAE (flowrvs-release.md); the older 2.6 GB files are skipped.
    "flowrvs": ("xmz111/FlowRVS", ["FlowRVS_dit_mevis.pth", "tuned_vae.pth"]),
    "sam3": ("facebook/sam3", None),  # gated: accept the licence on the hub, then `huggingface-cli login`
}


@dataclass(frozen=True)
class Weights:
    engine: str
    setting: str            # the key of engine paths, e.g. "model", "wan_dir"
    files: tuple[str, ...]  # what a right folder holds ("a|b": either); one entry and is_file: a file
    default: str | None     # the known name (NAMES) to download when nothing is configured
    is_file: bool = False
    optional: str = ""      # when set: why the engine may run without these weights

    @property
    def flag(self) -> str:  # the engine's own table (engine.ModelPath) names the flag and variable
        return model_path(self.engine, self.setting).flag

    @property
    def env(self) -> str:
        return model_path(self.engine, self.setting).env


CATALOG = (
    Weights("sam2", "model", ("config.json", "model.safetensors|model.safetensors.index.json"), "sam2.1-tiny"),
    Weights("flowrvs", "wan_dir", ("transformer/config.json", "vae/config.json", "text_encoder/config.json",
             "tokenizer/tokenizer_config.json|tokenizer/tokenizer.json", "scheduler/scheduler_config.json"),
            "wan2.1-t2v-1.3b"),
    Weights("flowrvs", "dit_checkpoint", ("FlowRVS_dit_mevis.pth",), "flowrvs", is_file=True),
    Weights("flowrvs", "vae_checkpoint", ("tuned_vae.pth",), "flowrvs",
            is_file=True),
    Weights("flowseg", "model_dir", ("flowseg_config.json", "model.safetensors"), None),
    Weights("sam3", "model", ("config.json", "model.safetensors|model.safetensors.index.json", "tokenizer.json|vocab.json"), "sam3"),
    Weights("sam3", "tracker", ("config.json", "model.safetensors|model.safetensors.index.json"), None,
            optional="for videos, unless the SAM 3 weights are the full facebook/sam3 checkpoint, which holds "
                     "the tracker too"),
)


@dataclass
class Status:
    weights: Weights
    ready: bool
    where: list[str] = field(default_factory=list)    # folders / files looked at
    missing: list[str] = field(default_factory=list)  # files not found there
    hint: str = ""


def check(weights: Weights, value: str | None) -> Status:
    """Are the weights named by `value` (a flag's or variable's), or else the default repo in
    the cache, all here?"""
    if value:
        return _check_value(weights, str(value))
    status = Status(weights, ready=False)
    if weights.default is None:
        status.hint = (f"optional ({weights.optional}): set {weights.flag} / {weights.env}" if weights.optional
                       else f"not configured: set {weights.flag} / {weights.env}")
        return status
    repo = NAMES[weights.default][0]
    found = _check_folder(weights, hub.cache_entry(repo), repo)
    status.where, status.missing = found.where, found.missing
    if found.ready:
        target = found.where[-1] if weights.is_file else repo
        status.hint = f"in the cache but not configured: pass {weights.flag} {target}"
    else:
        status.hint = f"python launch.py models download {weights.default}"
    return status


def _check_value(weights: Weights, value: str) -> Status:
    path = Path(value).expanduser()
    if weights.is_file and (path.is_file() or path.suffix):
        ok = path.is_file()
        return Status(weights, ok, [str(path)], [] if ok else [path.name],
                      "" if ok else f"no such file; fix {weights.flag} / {weights.env}")
    if path.is_dir():
        return _check_folder(weights, path, None)
    if hub.is_repo_id(value):
        return _check_folder(weights, hub.cache_entry(value), value)
    return Status(weights, False, [str(path)], list(weights.files), f"{path} does not exist")


def _check_folder(weights: Weights, folder: Path, repo: str | None) -> Status:
    """A plain folder, or a cache entry (its refs/main snapshot, or its only one)."""
    if (folder / "snapshots").is_dir() or repo is not None:
        snapshot = _snapshot(folder)
        if snapshot is None:
            hint = f"python launch.py models download {_name_for(repo) or repo}" if repo else "download it again"
            return Status(weights, False, [str(folder)], list(weights.files), hint)
        folder = snapshot
    missing = hub.missing_files(folder, weights.files)
    where = [str(folder / weights.files[0])] if weights.is_file else [str(folder)]
    hint = "" if not missing else (f"python launch.py models download {_name_for(repo) or repo} (it resumes)"
                                   if repo else f"{folder} is incomplete")
    return Status(weights, not missing, where, missing, hint)


def _snapshot(entry: Path) -> Path | None:
    snapshots = entry / "snapshots"
    ref = entry / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip()
    found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    return found[0] if len(found) == 1 else None


def _name_for(repo: str | None) -> str | None:
    return next((name for name, (r, _) in NAMES.items() if r == repo), None)


def report(paths: dict) -> list[Status]:
    """Every engine's weights, checked against `paths` ({"sam2": {"model": ...}}, from flags/env)."""
    return [check(w, paths.get(w.engine, {}).get(w.setting)) for w in CATALOG]


def abilities_text(name: str) -> str:
    """What the engine does, from its registered abilities ("segment image, candidates")."""
    from .registry import Ability, engine_info
    declared = engine_info(name).abilities
    return ", ".join(a.label for a in Ability if a in declared)


def format_report(statuses: list[Status]) -> str:
    lines = [f"Hugging Face cache: {hub.hub_cache_dir()}", ""]
    shown = set()
    for s in statuses:
        w = s.weights
        if w.engine not in shown:
            shown.add(w.engine)
            lines.append(f"{w.engine}: {abilities_text(w.engine)}")
        state = "ready" if s.ready else "unset" if w.optional and not s.where else "missing"
        lines.append(f"{w.engine:8} {w.setting:15} {state:8} ({w.flag} / {w.env})")
        for place in s.where:
            lines.append(f"    looked in {place}")
        if s.missing:
            lines.append(f"    missing: {', '.join(m.replace('|', ' or ') for m in s.missing)}")
        if s.hint:
            lines.append(f"    -> {s.hint}")
    return "\n".join(lines)


class DownloadError(Exception):
    """The weights could not be fetched; the message says what is missing and where to put it."""


def download(name: str) -> Path:
    """Fetch a known name (NAMES) or a repo id into the standard cache; returns the snapshot."""
    repo, files = NAMES.get(name, (name, None))
    if not hub.is_repo_id(repo):
        raise DownloadError(f"{name!r} is neither a known name ({', '.join(NAMES)}) nor a repo id like "
                            "facebook/sam2.1-hiera-tiny")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    try:
        return Path(snapshot_download(repo, allow_patterns=files))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        wanted = ", ".join(files) if files else "every file of the repo"
        raise DownloadError(
            f"could not fetch {repo} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Missing: "
            f"{wanted}. On a machine with internet run `huggingface-cli download {repo}` and copy its cache folder "
            f"{hub.cache_entry(repo).name} into {hub.hub_cache_dir()}; or download the repo into a folder and pass "
            "that folder with the engine's flag (launch.py models list shows which)") from e
