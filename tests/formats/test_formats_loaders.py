"""Our exports as the field's loaders read them (tests/helpers/field_loaders.py restates their steps).

RefCOCO through refer.py's REFER + getMask and through pycocotools' annToMask; Ref-YouTube-VOS
through ReferFormer's training reader. Every mask must come out exactly as saved.
"""
import json
import pickle
import pickletools

import cv2
import numpy as np
import pytest

from app import formats
from app.formats._polygons import polygons_to_mask
from engine import rle
from tests.formats.test_formats_common import canon, fresh, load, source  # noqa: F401 (fixtures)
from tests.helpers.field_loaders import pycocotools_masks, refer_get_masks, referformer_samples
from tests.helpers.media_fixtures import write_image


def blobs_with_holes(h, w, seed):
    """A random mask with parts, holes, islands in holes, thin lines and lone pixels."""
    rng = np.random.default_rng(seed)
    mask = cv2.GaussianBlur(rng.random((h, w)), (0, 0), 3) > 0.5
    return mask ^ (rng.random((h, w)) < 0.03)


@pytest.fixture
def project(source, tmp_path):
    """The shared project plus an image whose mask is hard for polygons."""
    write_image(tmp_path / "noisy.png", size=(80, 60), seed=5)
    media = source.add_media(tmp_path / "noisy.png")["id"]
    e = source.add_expression(media, "the speckled blobs", category="blob")["id"]
    source.save_mask(e, 0, blobs_with_holes(60, 80, seed=3))
    return source


def saved_masks_by_ref(store):
    """ref_id (= expression id) -> the saved mask of the expression's first object."""
    out = {}
    for e in store.list_expressions():
        m = store.get_media(e["media_id"])
        if m["kind"] == "image":
            out[e["id"]] = store.get_mask(e["id"], 0, store.list_objects(e["id"])[0]["id"])
    return out


def test_refer_py_reads_every_ref_of_the_refcoco_export_exactly(project, tmp_path):
    report = formats.export_refcoco(project, tmp_path / "data" / "refcoco")
    assert not any("rename this folder" in w for w in report.warnings)
    masks = refer_get_masks(tmp_path / "data", "refcoco", "unc")
    saved = {ref: mask for ref, mask in saved_masks_by_ref(project).items() if mask.any()}
    assert sorted(masks) == sorted(saved) and len(saved) == 4
    for ref_id, (mask, area) in masks.items():
        assert mask.max() == 1  # parts never overlap: the sum over polygons stays 0/1
        assert np.array_equal(mask.astype(bool), saved[ref_id]), ref_id
        assert area == saved[ref_id].sum()
    with open(tmp_path / "data" / "refcoco" / "refs(unc).p", "rb") as f:  # Python 2 can unpickle it
        assert max(op.proto for op, _, _ in pickletools.genops(f.read())) <= 2


def test_pycocotools_reads_the_same_export_exactly(project, tmp_path):
    formats.export_refcoco(project, tmp_path / "refcoco")
    data = load(tmp_path / "refcoco" / "instances.json")
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"])
    by_ann = pycocotools_masks(tmp_path / "refcoco" / "instances.json")
    rows = {(r["object_id"]): r for r in project.iter_masks()}
    assert len(by_ann) == len(data["annotations"]) == 5
    for ann in data["annotations"]:
        row = rows[ann["object_id"]]
        saved = rle.decode({"size": [row["height"], row["width"]], "counts": row["counts"]})
        assert np.array_equal(by_ann[ann["id"]].astype(bool), saved)
        assert ann["area"] == saved.sum()


def test_the_check_can_fail_a_bare_rle_dict_breaks_refer_py(project, tmp_path):
    """What the export wrote before: refer.py's getMask indexes segmentation[0] of a dict."""
    formats.export_refcoco(project, tmp_path / "refcoco")
    path = tmp_path / "refcoco" / "instances.json"
    data = load(path)
    for ann in data["annotations"]:
        image = next(im for im in data["images"] if im["id"] == ann["image_id"])
        ann["segmentation"] = rle.encode(polygons_to_mask(ann["segmentation"], image["height"], image["width"]))
    path.write_text(json.dumps(data))
    with pytest.raises(KeyError):
        refer_get_masks(tmp_path, "refcoco", "unc")


def test_refs_without_a_mask_stay_in_refs_json_only(project, tmp_path):
    e = project.add_expression(project.list_media()[2]["id"], "nothing drawn yet")["id"]
    report = formats.export_refcoco(project, tmp_path / "data" / "refcoco")
    assert any("refs.json keeps them" in w for w in report.warnings)
    refs = load(tmp_path / "data" / "refcoco" / "refs.json")
    with open(tmp_path / "data" / "refcoco" / "refs(unc).p", "rb") as f:
        pickled = pickle.load(f)
    assert e in [r["ref_id"] for r in refs] and e not in [r["ref_id"] for r in pickled]
    assert len(refer_get_masks(tmp_path / "data", "refcoco", "unc")) == len(pickled) == 4
    report = formats.export_refcoco(project, tmp_path / "mine")
    assert any("rename this folder" in w for w in report.warnings)


def test_refcoco_round_trip_keeps_holes_exactly(project, fresh, tmp_path):
    formats.export_refcoco(project, tmp_path / "rc")
    target = fresh()
    formats.import_refcoco(target, tmp_path / "rc")
    assert canon(target) == canon(project, ("image",))


def test_referformer_reads_the_ytvos_export(source, tmp_path):
    formats.export_ytvos(source, tmp_path / "yt")
    samples = referformer_samples(tmp_path / "yt", tmp_path / "yt" / "meta_expressions.json")
    expressions = [e for e in source.list_expressions() if source.get_media(e["media_id"])["kind"] == "video"]
    assert [s["exp"] for s in samples] == [e["text"] for e in expressions]
    for sample, e in zip(samples, expressions):
        media = source.get_media(e["media_id"])
        first = source.list_objects(e["id"])[0]
        assert sample["category"] == first["category"] and sample["obj_id"] == first["label"]
        assert sample["sizes"] == [(media["width"], media["height"])] * media["frames"]
        for f, mask in enumerate(sample["masks"]):
            assert np.array_equal(mask, source.get_mask(e["id"], f, first["id"])), (e["text"], f)


def test_ytvos_meta_json_lists_objects_and_the_frames_they_show_in(source, tmp_path):
    formats.export_ytvos(source, tmp_path / "yt")
    meta = load(tmp_path / "yt" / "meta.json")["videos"]
    assert meta["clip"]["objects"]["1"] == {"category": "square", "frames": [f"{i:05d}" for i in range(6)]}
    assert meta["clip"]["objects"]["3"] == {"category": "dot", "frames": ["00002"]}
    assert meta["walk"]["objects"]["1"]["frames"] == ["00000", "00003"]


def test_foreign_ytvos_takes_categories_from_meta_json(source, fresh, tmp_path):
    formats.export_ytvos(source, tmp_path / "yt")
    meta = load(tmp_path / "yt" / "meta_expressions.json")
    for video in meta["videos"].values():
        del video["objects"]  # as Ref-YouTube-VOS ships it: categories only in meta.json
    (tmp_path / "yt" / "meta_expressions.json").write_text(json.dumps(meta))
    target = fresh()
    formats.import_ytvos(target, tmp_path / "yt")
    assert canon(target) == canon(source, ("video",))


@pytest.mark.parametrize("style", ["compressed", "uncompressed", "with a polygon"])
def test_refclef_lists_of_rles_are_imported(style, fresh, tmp_path):
    """refclef keeps each mask as a list of RLEs; we also take uncompressed ones, and mixes."""
    root = tmp_path / "refclef"
    (root / "images").mkdir(parents=True)
    write_image(root / "images" / "a.png", size=(40, 30), seed=1)
    left, right = np.zeros((30, 40), bool), np.zeros((30, 40), bool)
    left[5:20, 3:15], right[10:25, 20:38] = True, True
    if style == "compressed":
        seg = [rle.encode(left), rle.encode(right)]
    elif style == "uncompressed":
        seg = [{"size": [30, 40], "counts": runs(m)} for m in (left, right)]
    else:
        seg = [rle.encode(left), [20, 10, 38, 10, 38, 25, 20, 25]]  # pixel centres 20.5..37.5, 10.5..24.5
    instances = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
                 "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": seg}],
                 "categories": [{"id": 1, "name": "thing"}]}
    (root / "instances.json").write_text(json.dumps(instances))
    refs = [{"ref_id": 1, "ann_id": 7, "image_id": 1, "category_id": 1, "split": "train",
             "sentences": [{"sent_id": 1, "sent": "both boxes", "raw": "both boxes", "tokens": []}]}]
    with open(root / "refs(berkeley).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    target = fresh()
    formats.import_refcoco(target, root)
    e = target.list_expressions()[0]
    assert np.array_equal(target.get_mask(e["id"], 0), left | right)


def runs(mask):
    """Uncompressed COCO counts: run lengths down the columns, background first."""
    flat = np.asarray(mask, np.uint8).T.ravel()
    changes = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return [0] + counts if flat[0] else counts


def test_exact_polygons_on_random_masks_for_both_loaders():
    """pycocotools' union and refer.py's sum both give the mask back, for any mask."""
    from pycocotools import mask as mask_utils

    from app.formats._polygons import exact_polygons
    rng = np.random.default_rng(7)
    for n in range(300):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.8) if n % 2 else blobs_with_holes(h, w, n)
        polygons = exact_polygons(mask)
        assert np.array_equal(polygons_to_mask(polygons, h, w), mask), n
        if polygons:
            summed = mask_utils.decode(mask_utils.frPyObjects(polygons, h, w)).sum(axis=2)
            assert np.array_equal(summed, mask), n


def test_a_mask_the_outlines_miss_falls_back_to_column_runs(monkeypatch):
    from app.formats import _polygons
    mask = blobs_with_holes(30, 40, seed=1)
    monkeypatch.setattr(_polygons, "_parts_with_holes", lambda m: [[0, 0, 5, 0, 5, 5]])  # wrong on purpose
    polygons = _polygons.exact_polygons(mask)
    assert np.array_equal(polygons_to_mask(polygons, 30, 40), mask)
    assert all(len(p) == 8 for p in polygons)  # one rectangle per run
