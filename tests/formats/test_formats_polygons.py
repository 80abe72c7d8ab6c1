"""COCO polygons: an export option only, documented and reported as lossy (holes are lost)."""
import numpy as np
import pytest

from app import formats
from app.commands import cli
from app.formats import coco
from app.masks.ops import fill_holes
from tests.formats.test_formats_common import box, canon, fresh, load, source  # noqa: F401 (fixtures)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("mask", [
    box(30, 40, 5, 25, 5, 30),  # a rectangle
    box(30, 40, 10, 11, 20, 21),  # one pixel
    box(30, 40, 0, 30, 0, 40),  # the whole frame
    box(30, 40, 3, 4, 0, 40) | box(30, 40, 20, 28, 30, 38),  # a line and a second part
    np.eye(30, 40, dtype=bool) | np.eye(30, 40, 1, dtype=bool),  # a thin diagonal
    (np.add.outer((np.arange(30) - 15) ** 2, (np.arange(40) - 20) ** 2) <= 100),  # a disc
], ids=["rectangle", "pixel", "frame", "two-parts", "diagonal", "disc"])
def test_masks_without_holes_survive_polygons(mask):
    polygons = coco.mask_to_polygons(mask)
    back = coco.polygons_to_mask(polygons, *mask.shape)
    assert iou(back, mask) > 0.95
    assert np.array_equal(back, mask)  # in fact exactly, for masks without holes


def test_polygon_export_round_trips_approximately_and_says_holes_are_lost(source, fresh, tmp_path):
    out = tmp_path / "poly" / "coco.json"
    report = formats.FORMATS["coco-polygons"].export(source, out, images_dir=tmp_path / "poly" / "images")
    assert report.format == "coco-polygons"
    assert any("holes" in w and "lossy" in w for w in report.warnings)
    assert any("7 of 15 masks here changed" in w for w in report.warnings)  # the square (6 frames), the ring
    data = load(out)
    assert all(isinstance(a["segmentation"], list) and a["segmentation"] for a in data["annotations"])
    target = fresh()
    formats.import_coco(target, out)
    original, imported = canon(source), canon(target)
    # The same media, expressions and links; every mask close; the ring filled in.
    assert [(m[:4], [e[0] for e in m[4]]) for m in original] == [(m[:4], [e[0] for e in m[4]]) for m in imported]
    src_masks = masks_by_text(source)
    holes = {"the ring", "the square moving right"}
    for text, masks in masks_by_text(target).items():
        for key, mask in masks.items():
            if text not in holes:
                assert iou(mask, src_masks[text][key]) > 0.95
            assert np.array_equal(mask, fill_holes(src_masks[text][key]))  # exactly: holes filled, no more
    ring = masks_by_text(target)["the ring"][(0, 0)]
    assert ring[15, 15] and not src_masks["the ring"][(0, 0)][15, 15]  # the hole is gone
    assert np.array_equal(ring, box(30, 40, 5, 25, 5, 30))


def masks_by_text(store):
    out = {}
    for e in store.list_expressions():
        for n, o in enumerate(store.list_objects(e["id"])):
            for frame in store.mask_sources(e["id"], o["id"]):
                out.setdefault(e["text"], {})[(n, frame)] = store.get_mask(e["id"], frame, o["id"])
    return out


def test_polygons_are_documented_as_lossy():
    assert "holes" in coco.__doc__ and "LOSSY" in coco.__doc__
    assert "holes" in formats.FORMATS["coco-polygons"].about
    assert "holes" in cli.FORMATS_HELP
    assert "holes" in formats.__doc__


def test_rle_export_keeps_holes(source, fresh, tmp_path):
    formats.export_coco(source, tmp_path / "rle" / "coco.json", images_dir=tmp_path / "rle" / "images")
    target = fresh()
    formats.import_coco(target, tmp_path / "rle" / "coco.json")
    ring = masks_by_text(target)["the ring"][(0, 0)]
    assert not ring[15, 15] and ring[6, 6]
