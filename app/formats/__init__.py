"""Dataset formats in and out of a project.

Each format module has export_<fmt>(store, out, **opts) -> ExportReport and
import_<fmt>(store, src, media_root=None, **opts) -> ImportReport. Imports are all or
nothing: every problem is collected (file, entry, why) and one FormatError lists them before
anything is written. FORMATS maps the names the command line uses to them.

    coco            COCO instances JSON, masks as RLE (exact); a file
    coco-polygons   the same with polygons: LOSSY, holes inside masks are filled; a file
    refcoco         instances.json (exact polygons, as refer.py's getMask and pycocotools both
                    read them) + refs(unc).p + refs.json + images/; a folder
    ytvos           Ref-YouTube-VOS / Ref-DAVIS17: meta_expressions.json, meta.json (objects
                    and categories, for ReferFormer's reader), JPEGImages/, Annotations/
                    palette PNGs (pixel = object id); a folder
    mevis           MeViS: meta_expressions.json, mask_dict.json (per-frame RLE), JPEGImages/;
                    a folder
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from app.formats._base import ExportReport, FormatError, ImportReport
from app.formats.coco import export_coco, import_coco
from app.formats.mevis import export_mevis, import_mevis
from app.formats.refcoco import export_refcoco, import_refcoco
from app.formats.ytvos import export_ytvos, import_ytvos


@dataclass(frozen=True)
class Format:
    name: str
    export: Callable[..., ExportReport]
    import_: Callable[..., ImportReport]
    target: str  # what export writes and import reads: "file" or "folder"
    about: str


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("coco", export_coco, import_coco, "file", "COCO instances JSON, masks as RLE (exact)"),
    Format("coco-polygons", partial(export_coco, polygons=True), import_coco, "file",
           "COCO instances JSON with polygons: lossy, holes inside masks are filled"),
    Format("refcoco", export_refcoco, import_refcoco, "folder",
           "RefCOCO: instances.json, refs(unc).p, refs.json, images/ (images only)"),
    Format("ytvos", export_ytvos, import_ytvos, "folder",
           "Ref-YouTube-VOS / Ref-DAVIS17: meta_expressions.json, meta.json, JPEGImages/, Annotations/ "
           "(videos only)"),
    Format("mevis", export_mevis, import_mevis, "folder",
           "MeViS: meta_expressions.json, mask_dict.json, JPEGImages/ (videos only)"),
]}


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}") from None


__all__ = ["FORMATS", "Format", "FormatError", "ImportReport", "ExportReport", "get",
           "export_coco", "import_coco", "export_refcoco", "import_refcoco",
           "export_ytvos", "import_ytvos", "export_mevis", "import_mevis"]
