"""FlowSeg training: RefCOCO reading, targets, the Hungarian + LM loss, stages, exact resume,
and that training really fits data. Tiny preset on CPU, data from engine.demo_world."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from engine.demo_world import images as world_images
from engine.demo_world import write_image_dataset
from engine.flowseg import train as T
from engine.flowseg import trainer as TR
from engine.flowseg.data import RefCocoData
from engine.flowseg.losses import FlowSegCriterion
from tests.helpers.flowseg_fixtures import one_torch_thread  # noqa: F401  (autouse)

COMMON = ["--batch-size", "4", "--points", "256", "--log-every", "1", "--threads", "1"]
SMALL = dict(batch_size=4, points=256, log_every=1, threads=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fs") / "data"
    write_image_dataset(root, seed=3, count=6, size=48)
    return root


def test_reads_refcoco_samples_and_masks_from_the_world(world):
    data = RefCocoData(world)
    scenes = list(world_images(3, 6, 48))
    assert len(data.referring) == sum(len(s.expressions) for s in scenes)
    by_text = {}
    for image_id, scene in enumerate(scenes, start=1):
        for e in scene.expressions:
            by_text[image_id, e.text] = scene.mask(e)
    for s in data.referring:
        assert s.kind == "referring" and len(s.ann_ids) == 1
        np.testing.assert_array_equal(data.union(s), by_text[s.image_id, s.text])
    assert data.image(1).shape == (48, 48, 3) and data.image(1).dtype == np.uint8
    # generic samples: every annotation of one category in one image
    for g in data.generic:
        cats = {data.annotations[a]["category_id"] for a in g.ann_ids}
        assert len(cats) == 1 and data.categories[cats.pop()] == g.text
        assert data.target(g).shape[0] == len(g.ann_ids)
    assert set(data.vocabulary()) >= {"the", "circle"}


def test_polygon_annotations_and_refs_json(world, tmp_path):
    coco = json.loads((world / "instances.json").read_text())
    ann = coco["annotations"][0]
    x, y, w, h = ann["bbox"]
    ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    with open(world / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    data = RefCocoData(tmp_path, images=world / "images")
    box = data.mask(ann["id"])
    assert box.sum() >= w * h * 0.9 and box[y + h // 2, x + w // 2]


def test_clear_errors_for_wrong_folders(world, tmp_path):
    with pytest.raises(FileNotFoundError, match="RefCOCO-format folder"):
        RefCocoData(tmp_path)
    with pytest.raises(ValueError, match="split 'testA'.*train"):
        RefCocoData(world, split="testA")
    code = T.main(["--data", str(tmp_path), "--out", str(tmp_path / "run"), "--preset", "tiny"])
    assert code == 2


def test_target_follows_the_sam_resize_and_padding():
    mask = np.zeros((30, 60), bool)
    mask[:, 30:] = True                       # right half
    t = TR.target_on_sam_grid(mask[None], 64)  # longest side 60 -> 64, height 30 -> 32
    assert t.shape == (1, 64, 64)
    assert t[0, 32:].sum() == 0               # padding below the image
    assert t[0, :32, 40:].min() == 1 and t[0, :32, :24].max() == 0


def test_answer_labels_mark_only_the_answer():
    ids = torch.tensor([[5, 9, 7, 1, 2, 3, 0, 0], [1, 2, 3, 4, 1, 2, 3, 6]])
    labels = TR.answer_labels(ids, [1, 2, 3])
    assert labels[0].tolist() == [-100, -100, -100, 1, 2, 3, -100, -100]
    assert labels[1].tolist() == [-100, -100, -100, -100, 1, 2, 3, -100]   # the last one
    with pytest.raises(ValueError, match="answer tokens"):
        TR.answer_labels(torch.tensor([[4, 4, 4]]), [1, 2])


def test_hungarian_loss_rewards_the_right_mask_on_any_query():
    torch.manual_seed(0)
    target = torch.zeros(1, 32, 32)
    target[0, 8:20, 4:16] = 1
    crit = FlowSegCriterion(num_points=512, lm_weight=0)
    logits = torch.full((1, 6, 16, 16), -8.0)
    classes = torch.tensor([[[-4.0, 4.0]] * 6])                      # all "no object"
    wrong, _ = crit([(logits, classes)], [target])
    for q in (0, 4):                                                 # matching finds the query
        good = logits.clone()
        good[0, q, 4:10, 2:8] = 8.0
        cls = classes.clone()
        cls[0, q] = torch.tensor([4.0, -4.0])
        right, parts = crit([(good, cls)], [target])
        assert right < wrong / 4 and parts["dice"] < 0.25
    # deep supervision: every layer adds its own matched loss
    two, _ = crit([(logits, classes), (logits, classes)], [target])
    assert torch.isclose(two, 2 * wrong, rtol=0.05)


def test_stages_train_only_their_parts(world, tmp_path):
    config = TR.TrainConfig(str(world), str(tmp_path), preset="tiny", stage="alignment", lr=1e-2,
                            warmup=1, **SMALL)
    data = RefCocoData(world)
    pipe = TR.build_pipeline(config, data)
    before = {k: v.clone() for k, v in pipe.model.state_dict().items()}
    trainer = TR.Trainer(pipe, data, config)
    trainer.train_step()
    changed = {k.split(".")[0] for k, v in pipe.model.state_dict().items()
               if not torch.equal(v, before[k])}
    assert changed == {"siglip_proj", "sam_proj", "text_proj"}


def test_training_fits_a_fixed_batch(world, tmp_path):
    """Thirty steps on one batch: the segmentation loss must fall well below its start."""
    config = TR.TrainConfig(str(world), str(tmp_path), preset="tiny", lr=3e-3, warmup=1, steps=30,
                            **SMALL)
    data = RefCocoData(world)
    trainer = TR.Trainer(TR.build_pipeline(config, data), data, config)
    trainer.samples = lambda step: data.referring[:4]
    losses = [trainer.train_step()["total"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


def test_resume_continues_exactly(world, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = ["--data", str(world), "--preset", "tiny", "--lr", "1e-3", "--warmup", "2",
            "--save-every", "2", *COMMON]
    assert T.main([*base, "--out", str(straight), "--steps", "4"]) == 0
    assert T.main([*base, "--out", str(split), "--steps", "4", "--stop-at", "1"]) == 0
    # a trainer.pt from before TrainConfig (vars(argparse.Namespace) under "args") resumes too
    state = torch.load(split / TR.TRAINER_STATE, weights_only=False)
    state["args"] = {k: list(v) if isinstance(v, tuple) else v
                     for k, v in state.pop("config").items()}
    torch.save(state, split / TR.TRAINER_STATE)
    assert T.main(["--data", str(world), "--out", str(split), "--resume", "--steps", "4",
                   "--stop-at", "2"]) == 0
    assert T.main(["--data", str(world), "--out", str(split), "--resume", "--steps", "4"]) == 0
    from engine.flowseg.pipeline import FlowSegPipeline
    a = FlowSegPipeline.from_pretrained(straight / "pipeline").model.state_dict()
    b = FlowSegPipeline.from_pretrained(split / "pipeline").model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    logged = [json.loads(line)["step"] for line in (split / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]
    # a finished run is not silently overwritten
    assert T.main([*base, "--out", str(straight), "--steps", "4"]) == 2


def test_switches_reach_the_model(world, tmp_path):
    config = TR.TrainConfig(str(world), str(tmp_path), preset="tiny",
                            switch=("condition_refinement=off", "boundary_refinement=off"))
    pipe = TR.build_pipeline(config, RefCocoData(world))
    assert pipe.model.bar is None
    assert all(layer.condition_attn is None for layer in pipe.model.decoder.layers)
    with pytest.raises(ValueError, match="NAME=on|off"):
        TR.parse_switches(["bogus=on"])


def test_trains_on_the_studios_refcoco_export(tmp_path):
    """The loop teams use: correct masks in the studio, export RefCOCO, fine-tune on it."""
    import cv2

    from app.studio.studio import Studio
    scene = next(iter(world_images(11, 1, 48)))
    cv2.imwrite(str(tmp_path / "shapes.png"), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
    studio = Studio(tmp_path / "p.sqlite")
    media = studio.add_media(tmp_path / "shapes.png")[0]
    for e in scene.expressions[:3]:
        eid = studio.store.add_expression(media["id"], e.text)["id"]
        studio.store.save_mask(eid, 0, scene.mask(e))
    out, _ = studio.export_dataset("refcoco", tmp_path / "export")
    studio.close()
    data = RefCocoData(out)
    assert sorted(s.text for s in data.referring) == sorted(e.text for e in scene.expressions[:3])
    for s in data.referring:
        e = next(e for e in scene.expressions if e.text == s.text)
        np.testing.assert_array_equal(data.union(s), scene.mask(e))
    assert T.main(["--data", str(out), "--out", str(tmp_path / "run"), "--preset", "tiny",
                   "--steps", "1", *COMMON]) == 0
    assert (tmp_path / "run" / "pipeline" / "model.safetensors").is_file()
