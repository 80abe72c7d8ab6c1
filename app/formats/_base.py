"""What every format shares: errors, reports, strict readers, RLE checks, export folders.

Import is all or nothing: readers collect every problem (file, entry, why) into a `Problems`
list instead of stopping at the first, and the importer raises one `FormatError` before the
project is touched. Export reads one consistent snapshot of the store under its lock, then
writes files outside the lock (media files are content-addressed and never change).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.errors import UserError
from app.media import limits
from app.project.store import ProjectStore
from engine import rle

SHOWN_PROBLEMS = 20  # a FormatError lists this many; the rest are counted
MARKER = "flowlabel_export.json"  # written into every exported folder; marks it replaceable


class FormatError(UserError, ValueError):
    """A dataset that cannot be imported (or a project that cannot be exported) as asked.

    `problems` holds every (file, entry, why) found; str() shows the first SHOWN_PROBLEMS.
    """

    def __init__(self, summary: str, problems: list[tuple[str, str, str]] | None = None):
        self.summary, self.problems = summary, list(problems or [])
        lines = [summary]
        for file, entry, why in self.problems[:SHOWN_PROBLEMS]:
            lines.append(f"  {file}: {entry}: {why}" if entry else f"  {file}: {why}")
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"  ... and {len(self.problems) - SHOWN_PROBLEMS} more")
        super().__init__("\n".join(lines))


class Problems:
    """Collects (file, entry, why); file names are shown relative to the dataset's root."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.items: list[tuple[str, str, str]] = []

    def add(self, file, entry, why: str) -> None:
        self.items.append((self.name(file), str(entry or ""), why))

    def name(self, file) -> str:
        file = Path(file)
        try:
            return str(file.relative_to(self.root)) or file.name
        except ValueError:
            return str(file)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self, source) -> None:
        if self.items:
            raise FormatError(f"{len(self.items)} problem(s) in {source}; nothing was imported, the "
                              "project is unchanged. Fix these and import again:", self.items)


@dataclass
class ImportReport:
    format: str
    source: str
    read: dict[str, int] = field(default_factory=dict)  # media, expressions, objects, masks
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, why): harmless
    notes: list[str] = field(default_factory=list)  # decisions taken, e.g. how frames are stored
    media_ids: list[int] = field(default_factory=list)

    def summary(self) -> str:
        read = ", ".join(f"{n} {k}" for k, n in self.read.items())
        lines = [f"imported {self.format} from {self.source}: {read}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines += [f"  {entry}: {why}" for entry, why in self.skipped]
        return "\n".join(lines)


@dataclass
class ExportReport:
    format: str
    path: Path
    written: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the format could not hold

    def summary(self) -> str:
        written = ", ".join(f"{n} {k}" for k, n in self.written.items())
        lines = [f"wrote {self.path} ({self.format}: {written})"]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --- reading ---------------------------------------------------------------------------------

def read_json(path: Path, problems: Problems):
    """Strict UTF-8 JSON; None (and a problem naming the place) when it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.add(path, "", "file is missing")
        return None
    except OSError as e:
        problems.add(path, "", f"cannot be read ({e.strerror})")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        problems.add(path, f"byte {e.start} (line {line})",
                     f"is not UTF-8 text ({raw[e.start:e.start + 4]!r}); save the file as UTF-8")
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        problems.add(path, f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}")
        return None
    except RecursionError:
        problems.add(path, "", "invalid JSON: nested too deeply")
        return None
    if data is None:
        problems.add(path, "", "holds only null: there is nothing in it to import")
    return data


def clean_text(value, problems: Problems, file, entry, what="text") -> str | None:
    """A str that SQLite can store (no lone surrogates), whitespace collapsed as the store does."""
    if not isinstance(value, str):
        problems.add(file, entry, f"{what} must be a string, not {type(value).__name__}")
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        problems.add(file, entry, f"{what} is not valid Unicode (character {e.start} is a lone "
                                  "surrogate, e.g. a broken \\ud8xx escape)")
        return None
    value = " ".join(value.split())
    too_long = limits.EXPRESSION_CHARS.exceeded(len(value))
    if too_long:
        problems.add(file, entry, f"{what} is too long: {too_long}")
        return None
    return value


def given_name(entry, fallback: str) -> str:
    """The name a media had where it was exported (our exports keep it in original_name), else
    `fallback`; the store cleans it as it records it."""
    name = entry.get("original_name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and name.strip() else fallback


def safe_name(name, problems: Problems, file, entry, what: str) -> str | None:
    """A dataset id used as one path component: no separators, no '..', not empty."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name:
        problems.add(file, entry, f"{what} {name!r} is not a plain file or folder name")
        return None
    return name


def as_int(value, problems: Problems, file, entry, what: str, low=None, high=None) -> int | None:
    """An int (or a string of digits, as ReferFormer writes obj_id); range-checked."""
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or (low is not None and value < low) or (high is not None and value > high):
        bounds = "" if low is None else f" in {low}..{high}" if high is not None else f" >= {low}"
        problems.add(file, entry, f"{what} must be an integer{bounds}")
        return None
    return value


# --- RLE -------------------------------------------------------------------------------------

def _runs_from_string(counts: str) -> np.ndarray | None:
    """Decode pycocotools' compressed counts (6-bit groups, deltas from two back); None if broken.

    pycocotools itself does not check its input: a malformed string decodes to garbage
    (reading past its buffer), so every string is checked here first.
    """
    if not counts.isascii():
        return None
    c = np.frombuffer(counts.encode("ascii"), np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if c.min() < 0 or c.max() > 63:
        return None
    more = (c & 0x20) != 0
    if more[-1]:
        return None  # the last group is cut short
    ends = np.flatnonzero(~more)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 7:  # 35 bits: longer than any image's pixel count
        return None
    position = np.arange(c.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((c & 0x1F) << (5 * position), starts)
    negative = (c[ends] & 0x10) != 0
    values = np.where(negative, values - (1 << (5 * lengths)), values)
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])  # counts[m] += counts[m - 2] for m > 2
    if runs.size > 2:
        runs[2::2] = np.cumsum(values[2::2])
    return runs


def decode_rle(value, height: int | None, width: int | None, problems: Problems, file, entry):
    """A COCO RLE dict (compressed str counts or uncompressed list) -> bool [H, W], checked.

    height/width, when given, are what the frame is; a mask of another size is a problem.
    """
    if not isinstance(value, dict) or "size" not in value or "counts" not in value:
        problems.add(file, entry, "a mask must be COCO RLE: {\"size\": [h, w], \"counts\": ...}")
        return None
    size = value["size"]
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        problems.add(file, entry, f"RLE size {size!r} must be [height, width] with positive integers")
        return None
    h, w = size
    too_big = limits.size_problem(w, h)
    if too_big:
        problems.add(file, entry, f"RLE size {w}x{h}: {too_big}")
        return None
    if height is not None and (h, w) != (height, width):
        problems.add(file, entry, f"mask is {w}x{h} but the frame is {width}x{height}")
        return None
    counts = value["counts"]
    if isinstance(counts, str):
        runs = _runs_from_string(counts)
        if runs is None:
            problems.add(file, entry, "broken RLE: counts is not a valid compressed COCO RLE string")
            return None
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        runs = np.asarray(counts, np.int64)
    else:
        problems.add(file, entry, "broken RLE: counts must be a string (compressed) or a list of integers")
        return None
    if runs.size and runs.min() < 0:
        problems.add(file, entry, "broken RLE: a run has negative length")
        return None
    if int(runs.sum()) != h * w:
        problems.add(file, entry, f"broken RLE: its runs cover {int(runs.sum())} pixels, the mask has "
                                  f"{h}x{w} = {h * w}")
        return None
    flat = np.repeat(np.arange(runs.size) % 2 == 1, runs)  # runs alternate, background first
    return flat.reshape((w, h)).T  # column-major, as COCO counts run


def encode_counts(mask: np.ndarray) -> str | None:
    """The store's canonical counts for a mask; None for an empty mask (nothing is stored)."""
    return rle.encode(mask)["counts"] if mask.any() else None


# --- the project, as exports see it ----------------------------------------------------------

@dataclass
class Snapshot:
    media: list[dict]
    expressions: list[dict]
    objects: dict[int, dict]
    links: dict[int, list[int]]  # expression id -> object ids, by label
    masks: dict[int, dict[int, dict]]  # object id -> frame -> mask row (counts, height, width, source)

    def objects_of_media(self, media_id: int) -> list[dict]:
        return sorted((o for o in self.objects.values() if o["media_id"] == media_id), key=lambda o: o["label"])

    def expressions_of_media(self, media_id: int) -> list[dict]:
        return [e for e in self.expressions if e["media_id"] == media_id]


def snapshot(store: ProjectStore) -> Snapshot:
    with store.transaction():  # one consistent view while other tabs keep editing
        objects = {o["id"]: o for o in store.all_objects()}
        links: dict[int, list[int]] = {}
        for link in store.expression_objects():
            links.setdefault(link["expression_id"], []).append(link["object_id"])
        masks: dict[int, dict[int, dict]] = {}
        for row in store.iter_masks():
            masks.setdefault(row["object_id"], {})[row["frame"]] = row
        snap = Snapshot(store.list_media(), store.list_expressions(), objects, links, masks)
    for ids in snap.links.values():
        ids.sort(key=lambda o: objects[o]["label"])
    return snap


MAX_STEM_BYTES = 120  # a file or folder name holds 255 bytes; room is left for suffixes


def short_stem(stem: str) -> str:
    """`stem` if it fits MAX_STEM_BYTES of UTF-8; else its start and a hash of all of it, so that
    long names stay distinct and the same name always gives the same stem."""
    raw = stem.encode("utf-8")
    if len(raw) <= MAX_STEM_BYTES:
        return stem
    digest = hashlib.sha1(raw).hexdigest()[:10]
    head = raw[:MAX_STEM_BYTES - len(digest) - 1].decode("utf-8", errors="ignore").rstrip("._")
    return f"{head}-{digest}"


def unique_stems(media: list[dict]) -> dict[int, str]:
    """media id -> a folder/file stem unique in the export (case-insensitively), filesystem-safe."""
    stems, taken = {}, set()
    for m in media:
        stem = re.sub(r"[^\w.\-]+", "_", Path(m["name"]).stem).strip("._") or f"media_{m['id']}"
        stem = short_stem(stem)
        if stem.lower() in taken:
            stem = f"{stem}_{m['id']}"
        n = 1
        while stem.lower() in taken:
            n += 1
            stem = f"{stem}_{n}"
        taken.add(stem.lower())
        stems[m["id"]] = stem
    return stems


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --- writing ---------------------------------------------------------------------------------

def _ordinary_permissions(path: Path, mode=0o666) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def write_json_atomic(data, out: Path, **dump_kwargs) -> Path:
    """Write JSON to `out` through a temporary file renamed over it: never half a file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, **(dump_kwargs or {"separators": (",", ":")}))
        _ordinary_permissions(Path(tmp))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


@contextmanager
def export_folder(out: Path, report: ExportReport):
    """Build an export in a hidden sibling folder, then put it in place of `out`.

    `out` may be missing, empty, or an earlier FlowLabel export (it holds MARKER), which is
    replaced; any other existing folder or file is refused, so a mistyped --out never
    deletes someone's data. On failure nothing at `out` changes.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / MARKER).is_file())):
        raise FormatError(f"{out} exists and is not an earlier FlowLabel export; choose a new or empty "
                          "folder for --out (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        write_json_atomic({"format": report.format, "created": now(), "written": report.written,
                           "warnings": report.warnings}, tmp / MARKER, indent=1)
        for path in [tmp, *tmp.rglob("*")]:
            _ordinary_permissions(path, 0o777 if path.is_dir() else 0o666)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
