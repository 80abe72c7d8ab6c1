"""engine.demo_world: determinism, masks, unambiguous expressions, occlusion, the studio's importers, CLI."""
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from app.formats.mevis import import_mevis
from app.formats.refcoco import import_refcoco
from app.project.store import ProjectStore
from engine.demo_world import (
    COLOURS,
    KINDS_IMAGE,
    KINDS_VIDEO,
    VOCABULARY,
    SceneObject,
    WorldConfig,
    generate_image,
    generate_video_clip,
    image_samples,
    images,
    video_clips,
    video_samples,
    vocabulary,
    write_image_dataset,
    write_video_dataset,
)
from engine.demo_world.language import candidates

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clips():
    return list(video_clips(11, 40))


@pytest.fixture(scope="module")
def stills():
    return list(images(11, 60))


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- an independent resolver: reads the text, looks only at the scene description ------------

NUMBER = {"two": 2, "three": 3}
SHAPE_WORDS = {"square", "circle", "triangle", "star", "hexagon"}


def head_set(words: str, objects) -> set:
    w = words.split()
    size = w.pop(0) if w[0] in ("big", "small") else None
    colour = w.pop(0) if w[0] in COLOURS else None
    assert len(w) == 1, words
    noun = w[0][:-1] if w[0].endswith("s") and w[0][:-1] in SHAPE_WORDS | {"shape"} else w[0]
    shape = None if noun == "shape" else noun
    assert shape is None or shape in SHAPE_WORDS, words
    return {o.index for o in objects if (size is None or o.size == size) and (colour is None or o.colour == colour)
            and (shape is None or o.shape == shape)}


def coord(o, direction):
    """Per-frame coordinate growing towards `direction`."""
    x, y = o.centres[:, 0], o.centres[:, 1]
    return {"left": -x, "right": x, "top": -y, "bottom": y}[direction]


def same_every_frame(ranked):
    """ranked: per-frame lists of object indices, best first; the common first element or None."""
    firsts = {r[0] for r in ranked}
    return firsts.pop() if len(firsts) == 1 else None


def resolve(text: str, objects) -> set | None:
    by = {o.index: o for o in objects}
    frames = len(objects[0].centres)
    m = re.fullmatch(r"the (.+) (left of|right of|above|below) the (.+)", text)
    if m:
        anchor = head_set(m[3], objects)
        assert len(anchor) == 1, text
        a = by[anchor.pop()]
        direction = {"left of": "left", "right of": "right", "above": "top", "below": "bottom"}[m[2]]
        return {i for i in head_set(m[1], objects) - {a.index}
                if (coord(by[i], direction) > coord(a, direction)).all()}
    m = re.fullmatch(r"the (second|third) (.+) from the (left|right|top|bottom)", text)
    if m:
        k = {"second": 1, "third": 2}[m[1]]
        group = sorted(head_set(m[2], objects))
        per_frame = [[sorted(group, key=lambda i: -coord(by[i], m[3])[f])[k]] for f in range(frames)]
        return {same_every_frame(per_frame)}
    m = re.fullmatch(r"the (larger|smaller) of the two (.+)", text)
    if m:
        group = head_set(m[2], objects)
        assert len(group) == 2, text
        pick = max if m[1] == "larger" else min
        return {pick(group, key=lambda i: by[i].radius)}
    m = re.fullmatch(r"the (largest|smallest) (.+)", text)
    if m:
        group = head_set(m[2], objects)
        assert len(group) >= 3, text
        pick = max if m[1] == "largest" else min
        return {pick(group, key=lambda i: by[i].radius)}
    m = re.fullmatch(r"the (left|right|top|bottom)most (.+)", text)
    if m:
        group = head_set(m[2], objects)
        per_frame = [sorted(group, key=lambda i: -coord(by[i], m[1])[f]) for f in range(frames)]
        return {same_every_frame(per_frame)}
    m = re.fullmatch(r"the (?:(two|three) )?(.+) (moving (left|right|up|down)|standing still)", text)
    if m:
        motion = m[4] or "still"
        found = {i for i in head_set(m[2], objects) if by[i].motion == motion}
        return found if len(found) == NUMBER.get(m[1], 1) else None
    m = re.fullmatch(r"the (?:(two|three) )?(.+)", text)
    found = head_set(m[2], objects)
    return found if len(found) == NUMBER.get(m[1], 1) else None


# --- determinism --------------------------------------------------------------------------------

def test_same_seed_same_bytes_and_other_seeds_differ(tmp_path):
    write_video_dataset(tmp_path / "v1", 3, 3, frames=5)
    write_video_dataset(tmp_path / "v2", 3, 3, frames=5)
    write_video_dataset(tmp_path / "v3", 4, 3, frames=5)
    assert files_of(tmp_path / "v1") == files_of(tmp_path / "v2")
    a, c = files_of(tmp_path / "v1"), files_of(tmp_path / "v3")
    assert a["meta_expressions.json"] != c["meta_expressions.json"]
    assert a["JPEGImages/s3_00000/00000.jpg"] != c["JPEGImages/s4_00000/00000.jpg"]
    write_image_dataset(tmp_path / "i1", 3, 4)
    write_image_dataset(tmp_path / "i2", 3, 4)
    write_image_dataset(tmp_path / "i3", 5, 4)
    assert files_of(tmp_path / "i1") == files_of(tmp_path / "i2")
    assert files_of(tmp_path / "i1")["refs.json"] != files_of(tmp_path / "i3")["refs.json"]


def test_in_memory_generation_is_deterministic_and_index_stable():
    a = generate_video_clip(np.random.default_rng(5), frames=5, size=48)
    b = generate_video_clip(np.random.default_rng(5), frames=5, size=48)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.visible, b.visible)
    assert a.expressions == b.expressions
    third = list(video_clips(7, 3))[2]  # scene i is the same whatever the count or start
    again = next(video_clips(7, 1, start=2))
    assert np.array_equal(third.frames, again.frames) and third.expressions == again.expressions
    assert not np.array_equal(next(images(1, 1)).image, next(images(2, 1)).image)


# --- masks --------------------------------------------------------------------------------------

def test_masks_are_unions_of_visible_parts(clips, stills):
    for scene in clips + stills:
        n = len(scene.objects)
        assert scene.visible.shape[0] == n and scene.frames.dtype == np.uint8
        assert (scene.visible <= scene.full).all()
        assert scene.visible.sum(0).max() <= 1  # a pixel shows one object at most
        for a in scene.objects:  # shapes of one colour never overlap (their border would not show)
            for b in scene.objects[a.index + 1:]:
                assert a.colour != b.colour or not (scene.full[a.index] & scene.full[b.index]).any()
        for o in scene.objects:  # what is hidden is covered by an object drawn above
            above = [p.index for p in scene.objects if p.depth > o.depth]
            cover = scene.full[above].any(0) if above else np.zeros_like(scene.full[0])
            assert np.array_equal(scene.visible[o.index], scene.full[o.index] & ~cover)
        for e in scene.expressions:
            union = scene.visible[list(e.targets)].any(0)
            mask = scene.target_mask(e)
            assert np.array_equal(mask, union) and mask.any(axis=(1, 2)).any()
    clip, still = clips[0], stills[0]
    assert clip.mask(clip.expressions[0]).shape == clip.frames.shape[:3]
    assert still.mask(still.expressions[0]).shape == still.image.shape[:2]


def test_frames_show_objects_where_their_masks_say(clips):
    for clip in clips[:10]:
        for o in clip.objects:
            pixels = clip.frames[:, :, :][clip.visible[o.index]].astype(float)
            assert np.abs(pixels.mean(0) - COLOURS[o.colour]).max() < 25, (o.colour, pixels.mean(0))


def test_occlusion_makes_visible_masks_smaller(clips, stills, tmp_path):
    for scenes in (clips, stills):
        occluded = [(s, o) for s in scenes for o in s.objects
                    if (s.visible[o.index].sum((1, 2)) < s.full[o.index].sum((1, 2))).any()]
        assert len(occluded) >= len(scenes) // 3
        for s, o in occluded:
            assert s.visible[o.index].sum() / s.full[o.index].sum() >= 0.35  # still worth referring to
    # and the written masks are the visible parts, smaller than the shapes
    write_video_dataset(tmp_path / "v", 11, 6)
    world = json.loads((tmp_path / "v" / "world.json").read_text())
    mask_dict = json.loads((tmp_path / "v" / "mask_dict.json").read_text())
    smaller = 0
    for scene, clip in zip(world["scenes"], clips):
        for obj, anno in scene["anno_id"].items():
            written = np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()})
                                for r in mask_dict[anno]]).astype(bool)
            assert np.array_equal(written, clip.visible[int(obj)])
            smaller += int((written.sum((1, 2)) < clip.full[int(obj)].sum((1, 2))).any())
    assert smaller > 0


# --- expressions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["video", "image"])
def test_every_expression_names_exactly_its_objects(kind, clips, stills):
    scenes = clips if kind == "video" else stills
    seen = set()
    for scene in scenes:
        assert scene.expressions and len({e.text for e in scene.expressions}) == len(scene.expressions)
        for e in scene.expressions:
            assert resolve(e.text, scene.objects) == set(e.targets), e
            assert set(e.text.split()) <= set(VOCABULARY)
            seen.add(e.kind)
            if kind == "image":
                assert len(e.targets) == 1
    assert seen == set(KINDS_VIDEO if kind == "video" else KINDS_IMAGE)


def obj(i, shape, colour, size, radius, x, y, motion="still", dx=0.0, dy=0.0, frames=1):
    t = np.linspace(0, 1, frames)[:, None] if frames > 1 else np.zeros((1, 1))
    centres = np.array([x, y])[None, :] + np.array([dx, dy])[None, :] * t
    return SceneObject(i, shape, colour, size, radius, motion, i, centres)


def texts(objects, video=False):
    return {e.text: e.targets for pool in candidates(objects, 64, WorldConfig(), video).values() for e in pool}


def test_graded_words_need_a_clear_difference():
    close = [obj(0, "circle", "red", "big", 10.0, 16, 16), obj(1, "circle", "red", "big", 11.0, 48, 48),
             obj(2, "square", "blue", "small", 5.0, 48, 16)]
    assert "the larger of the two circles" not in texts(close)
    clear = [close[0], obj(1, "circle", "red", "small", 6.0, 48, 48), close[2]]
    assert texts(clear)["the larger of the two circles"] == (0,)
    # square 2 is 2 px left of the green circle (the margin is 5 px): "left of" it is in doubt
    doubt = [obj(0, "circle", "red", "big", 10.0, 16, 48), obj(1, "circle", "green", "big", 10.0, 40, 16),
             obj(2, "square", "blue", "small", 5.0, 38, 48), obj(3, "square", "blue", "small", 5.0, 50, 30)]
    said = texts(doubt)
    left = [t[len("the "):t.index(" left of the green circle")] for t in said if "left of the green circle" in t]
    assert left and all(2 not in head_set(head, doubt) for head in left)  # only heads that leave square 2 out
    assert said["the square above the red circle"] == (3,)  # square 2 is level with it: clearly not above


def test_motion_words_pick_the_movers():
    objects = [obj(0, "square", "red", "big", 10.0, 40, 20, "left", dx=-20, frames=5),
               obj(1, "square", "red", "big", 10.0, 20, 46, frames=5),
               obj(2, "circle", "blue", "small", 5.0, 50, 50, "left", dx=-20, frames=5)]
    said = texts(objects, video=True)
    assert said["the square moving left"] == (0,)
    assert said["the square standing still"] == (1,)
    assert said["the two shapes moving left"] == (0, 2)
    assert "the circle moving left" not in said  # "the circle" says it all: motion would be idle words


# --- the studio's importers ---------------------------------------------------------------------

def test_mevis_dataset_imports_with_exact_masks(tmp_path):
    summary = write_video_dataset(tmp_path / "mevis", 11, 5)
    clips = list(video_clips(11, 5))
    meta = json.loads((tmp_path / "mevis" / "meta_expressions.json").read_text())
    assert all(len(v["frames"]) == 9 for v in meta["videos"].values())
    with ProjectStore(tmp_path / "project.sqlite") as store:
        report = import_mevis(store, tmp_path / "mevis")
        assert report.skipped == []
        assert report.read["expressions"] == summary["expressions"] == sum(len(c.expressions) for c in clips)
        media = {m["name"]: m for m in store.list_media()}
        for i, clip in enumerate(clips):
            m = media[f"s11_{i:05d}.avi"]
            assert (m["width"], m["height"], m["frames"]) == (64, 64, 9)
            rows = store.list_expressions(m["id"])
            assert [r["text"] for r in rows] == [e.text for e in clip.expressions]
            for row, e in zip(rows, clip.expressions):
                objects = store.list_objects(row["id"])
                assert [o["label"] - 1 for o in objects] == list(e.targets)
                for f in range(9):
                    union = np.zeros((64, 64), bool)
                    for o in objects:
                        got = store.get_mask(row["id"], f, o["id"])
                        assert np.array_equal(got, clip.visible[o["label"] - 1, f])
                        union |= got
                    assert np.array_equal(union, clip.mask(e)[f])


def test_refcoco_dataset_imports_with_exact_masks(tmp_path):
    summary = write_image_dataset(tmp_path / "refcoco", 11, 6, split="val")
    scenes = list(images(11, 6))
    folder = tmp_path / "refcoco"
    refs = json.loads((folder / "refs.json").read_text())
    raw = (folder / "refs(unc).p").read_bytes()
    assert raw[:2] == b"\x80\x02" and pickle.loads(raw) == refs  # protocol 2, the same refs
    assert {r["split"] for r in refs} == {"val"}
    for r in refs:
        assert set(r) == {"ref_id", "ann_id", "image_id", "category_id", "split", "file_name", "sent_ids", "sentences"}
        assert [s["sent_id"] for s in r["sentences"]] == r["sent_ids"]
        assert all(s["tokens"] == s["sent"].split() and s["raw"] == s["sent"] for s in r["sentences"])
    instances = json.loads((folder / "instances.json").read_text())
    for ann in instances["annotations"]:
        enc = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
        assert ann["area"] == int(mask_utils.area(enc)) and ann["iscrowd"] == 0
        assert ann["bbox"] == [int(v) for v in mask_utils.toBbox(enc)]
    for name, kwargs in (("json", {}), ("pickle", {"refs": "refs(unc).p"})):
        with ProjectStore(tmp_path / f"{name}.sqlite") as store:
            report = import_refcoco(store, folder, **kwargs)
            assert report.skipped == [] and report.read["expressions"] == summary["expressions"]
            media = {m["name"]: m for m in store.list_media()}
            for i, scene in enumerate(scenes):
                m = media[f"s11_{i:05d}.jpg"]
                target = {e.text: e.targets for e in scene.expressions}
                rows = store.list_expressions(m["id"])
                assert sorted(r["text"] for r in rows) == sorted(target)
                for row in rows:
                    (o,) = store.list_objects(row["id"])
                    assert np.array_equal(store.get_mask(row["id"], 0), scene.visible[target[row["text"]][0], 0])


# --- API and CLI --------------------------------------------------------------------------------

def test_sample_streams_and_vocabulary():
    samples = list(video_samples(2, count=2, frames=5, size=48))
    assert len(samples) == sum(len(c.expressions) for c in video_clips(2, 2, frames=5, size=48))
    frames, expression, mask = samples[0]
    assert frames.shape == (5, 48, 48, 3) and frames.dtype == np.uint8
    assert mask.shape == (5, 48, 48) and mask.dtype == bool and mask.any()
    image, expression, mask = next(image_samples(2, count=1))
    assert image.shape == (64, 64, 3) and mask.shape == (64, 64) and mask.any() and isinstance(expression, str)
    assert VOCABULARY == sorted(set(VOCABULARY)) and {"the", "red", "circles", "leftmost", "moving"} <= set(VOCABULARY)
    assert "hexagon" not in VOCABULARY and "hexagon" in vocabulary(WorldConfig(shapes=("hexagon", "circle")))
    hexes = generate_image(np.random.default_rng(0), config=WorldConfig(shapes=("hexagon",), objects=(3, 3)))
    assert {o.shape for o in hexes.objects} == {"hexagon"}
    easy = WorldConfig(kinds=("attribute", "motion"))
    assert {e.kind for c in video_clips(0, 10, config=easy) for e in c.expressions} == {"attribute", "motion"}


def test_bad_arguments_teach_the_fix(tmp_path):
    with pytest.raises(ValueError, match="subset of"):
        WorldConfig(colours=("pink",))
    with pytest.raises(ValueError, match="kinds must be"):
        WorldConfig(kinds=("metaphor",))
    with pytest.raises(ValueError, match="at least 2"):
        generate_video_clip(np.random.default_rng(0), frames=1)
    with pytest.raises(ValueError, match="at least 32"):
        generate_image(np.random.default_rng(0), size=16)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="nothing was written"):
        write_image_dataset(tmp_path / "full", 0, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["full"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "engine.demo_world", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_writes_both_layouts(tmp_path):
    done = run_cli("video", "--seed", "4", "--count", "2", "--out", str(tmp_path / "v"), "--frames", "5",
                   "--size", "48")
    assert done.returncode == 0, done.stderr
    assert "wrote 2 videos of 5 frames" in done.stdout
    meta = json.loads((tmp_path / "v" / "meta_expressions.json").read_text())
    assert sorted(meta["videos"]) == ["s4_00000", "s4_00001"]
    assert sorted(p.name for p in (tmp_path / "v" / "JPEGImages" / "s4_00001").iterdir()) == \
        [f"{i:05d}.jpg" for i in range(5)]
    assert (tmp_path / "v" / "mask_dict.json").is_file() and (tmp_path / "v" / "world.json").is_file()
    done = run_cli("image", "--seed", "4", "--count", "3", "--out", str(tmp_path / "i"))
    assert done.returncode == 0, done.stderr
    assert {"instances.json", "refs(unc).p", "refs.json", "world.json"} <= {p.name for p in (tmp_path / "i").iterdir()}
    assert len(list((tmp_path / "i" / "images").iterdir())) == 3
    again = run_cli("image", "--seed", "4", "--count", "3", "--out", str(tmp_path / "i"))
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    bad = run_cli("video", "--seed", "4", "--count", "1", "--out", str(tmp_path / "b"), "--frames", "1")
    assert bad.returncode == 2 and "frames must be" in bad.stderr
