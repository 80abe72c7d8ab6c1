"""RefCOCO (refer.py layout): instances.json, refs(unc).p, and refs.json, its JSON twin.

    instances.json   COCO instances (images, annotations, categories); every segmentation
                     is a list of polygons that reproduce the mask exactly, holes included
                     (_polygons.py): refer.py's getMask reads polygons or lists of RLEs and
                     fails on a bare RLE dict, pycocotools reads polygons or uncompressed RLE
                     lists and fails on lists of compressed RLEs; polygons suit both.
    refs(unc).p      pickle (protocol 2, readable by Python 2 and 3): a list of refs
                     {ref_id, ann_id, image_id, category_id, split, file_name, sent_ids,
                      sentences: [{sent_id, sent, raw, tokens}]}
    refs.json        the same list as JSON, plus the refs without a mask
    images/<file_name>

refer.py's REFER(data_root, dataset, splitBy) opens <data_root>/<dataset>/refs(<splitBy>).p
and instances.json there, dataset being refcoco, refcoco+, refcocog or refclef: export into
a folder of one of those names. It indexes every ref by its ann_id, so a ref without
annotation (an expression without any mask) is left out of the pickle and kept in refs.json
(ann_id null; the report says how many). One ref per expression. An expression of several
objects has ann_id = its first annotation and "ann_ids" listing all (gRefCOCO writes a list
in ann_id; both are read). Images are written as the project shows them (_frames.py); video
media are skipped (RefCOCO is images only: use ytvos or mevis).

Import reads segmentations as RLE, polygons, or lists of RLEs (refclef), and their mix.

Import takes refs.json when present, else the one refs(*).p (or the file named by refs=).
The pickle is read with an unpickler that builds only lists, dicts, strings and numbers:
unpickling arbitrary objects can run code. Python 2 pickles (str as bytes) are decoded as
UTF-8. Only images named by a ref are imported, and only the annotations refs name.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

from app.formats import coco
from app.formats._base import (
    ExportReport,
    FormatError,
    ImportReport,
    Problems,
    export_folder,
    read_json,
    write_json_atomic,
)
from app.formats._plan import Plan, apply_plan
from app.formats._polygons import exact_polygons
from app.formats.coco_build import build_coco
from app.project.store import ProjectStore
from engine import rle

REFER_DATASETS = ("refcoco", "refcoco+", "refcocog", "refclef")  # the names REFER(data_root, dataset) accepts


def export_refcoco(store: ProjectStore, out, split: str = "train", splitby: str = "unc",
                   jpeg_quality: int = 95) -> ExportReport:
    out = Path(out)
    report = ExportReport("refcoco", out)
    with store.transaction():  # the JSON and the media rows from one moment
        data = build_coco(store)
        media = {m["id"]: m for m in store.list_media()}
    videos = {i for i, m in media.items() if m["kind"] == "video"}
    if videos:
        report.warnings.append(f"{len(videos)} video(s) skipped: RefCOCO holds images only "
                               "(export them as ytvos or mevis)")
    data["images"] = [im for im in data["images"] if im["media_id"] not in videos]
    kept = {im["id"] for im in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    data["videos"] = []
    refs = [r for r in data.pop("refs") if r["media_id"] not in videos]
    file_of = {im["id"]: im["file_name"] for im in data["images"]}
    for ref in refs:
        ref.update(split=split, file_name=file_of[ref["image_id"]])
    for ann in data["annotations"]:
        seg = ann["segmentation"]
        ann["segmentation"] = exact_polygons(rle.decode(seg))  # what refer.py's getMask reads
    indexed = [r for r in refs if r["ann_id"] is not None]  # refer.py indexes every ref by its annotation
    no_mask = len(refs) - len(indexed)
    several = sum(len(r["object_ids"]) > 1 for r in refs)
    if no_mask:
        report.warnings.append(f"{no_mask} expression(s) have no mask: refs.json keeps them (ann_id null), "
                               f"refs({splitby}).p leaves them out, since refer.py needs an annotation per ref")
    if out.name not in REFER_DATASETS:
        report.warnings.append(f"refer.py reads <data_root>/<dataset>/ with dataset one of "
                               f"{', '.join(REFER_DATASETS)}; rename this folder to one of them for REFER()")
    if several:
        report.warnings.append(f"{several} expression(s) name several objects: ann_id is the first "
                               "annotation, ann_ids lists all")
    with export_folder(out, report) as tmp:
        coco.write_images(store, data, media, tmp / "images", jpeg_quality)
        write_json_atomic(data, tmp / "instances.json")
        write_json_atomic(refs, tmp / "refs.json")
        with open(tmp / f"refs({splitby}).p", "wb") as f:
            pickle.dump(indexed, f, protocol=2)
        report.written = {"images": len(data["images"]), "expressions": len(refs),
                          "masks": len(data["annotations"])}
    return report


# --- import ----------------------------------------------------------------------------------

class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it holds a Python object ({module}.{name}); only lists, dicts, "
                                     "strings and numbers are read, since unpickling objects can run code")


def _text(value, problems: Problems, path: Path, where: str):
    """Python 2 str (bytes here) -> str as UTF-8, through lists and dicts."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.add(path, where, f"text is not UTF-8 (byte {e.start} of {value[:40]!r})")
            return None
    if isinstance(value, list):
        return [_text(v, problems, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return [_text(v, problems, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _text(k, problems, path, f"{where} key")
            out[key] = _text(v, problems, path, f"{where}.{key}")
        return out
    return value


def load_refs_pickle(path: Path, problems: Problems):
    try:
        raw = path.read_bytes()
    except OSError as e:
        problems.add(path, "", f"cannot be read ({e.strerror})")
        return None
    try:
        try:
            return _PlainUnpickler(io.BytesIO(raw)).load()
        except UnicodeDecodeError:  # Python 2 str with non-ASCII bytes
            return _text(_PlainUnpickler(io.BytesIO(raw), encoding="bytes").load(), problems, path, "refs")
    except Exception as e:  # a damaged pickle raises nearly anything
        problems.add(path, "", f"is not a readable refs pickle ({type(e).__name__}: {e})")
        return None


def _refs_file(folder: Path, refs) -> Path:
    if refs is not None:
        path = Path(refs)
        return path if path.is_absolute() or path.exists() else folder / path
    if (folder / "refs.json").is_file():
        return folder / "refs.json"
    pickles = sorted(folder.glob("refs(*).p"))
    if len(pickles) == 1:
        return pickles[0]
    if not pickles:
        raise FormatError(f"{folder} has neither refs.json nor a refs(*).p pickle; nothing was imported")
    raise FormatError(f"{folder} has several refs pickles ({', '.join(p.name for p in pickles)}); "
                      "choose one with refs=NAME; nothing was imported")


def import_refcoco(store: ProjectStore, src, media_root=None, refs=None) -> ImportReport:
    """Import a RefCOCO folder (or its instances.json); all or nothing."""
    src = Path(src)
    folder = src if src.is_dir() else src.parent
    instances = src if src.is_file() else folder / "instances.json"
    refs_path = _refs_file(folder, refs)
    media_root = Path(media_root) if media_root else coco.default_media_root(folder)
    problems = Problems(folder)
    plan = Plan("refcoco", folder)
    plan.notes.append(f"refs read from {refs_path.name}")
    data = read_json(instances, problems)
    ref_list = read_json(refs_path, problems) if refs_path.suffix == ".json" else \
        load_refs_pickle(refs_path, problems)
    if data is not None:
        inst = coco.read_instances(data, instances, media_root, problems, plan)
        if ref_list is not None:
            coco.read_refs(ref_list, refs_path, "refs", inst, problems, plan)
        coco.drop_unreferred(plan, keep_media=False)
    return apply_plan(store, plan, problems)
