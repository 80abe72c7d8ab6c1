"""Write a folder as a Hugging Face hub cache entry (blobs + snapshots/<hash> symlinks + refs/main),
the layout real users have after a download; the engines must load from it without a network."""
import hashlib
import os
from pathlib import Path


def write_hf_cache_entry(cache_root: Path, repo: str, folder: Path, snapshot: str) -> Path:
    entry = cache_root / ("models--" + repo.replace("/", "--"))
    snap = entry / "snapshots" / snapshot
    for src in sorted(folder.rglob("*")):
        if not src.is_file():
            continue
        data = src.read_bytes()
        blob = entry / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / src.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (entry / "refs").mkdir(parents=True, exist_ok=True)
    (entry / "refs" / "main").write_text(snapshot)
    return entry
