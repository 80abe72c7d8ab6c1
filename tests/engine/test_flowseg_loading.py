"""FlowSeg loading: save/load round trip, strictness with named keys, the public base models
from a folder or the Hugging Face cache (never downloading), and the registry factory."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import engine
from engine.flowseg import FlowSegPipeline
from engine.flowseg.checkpoints import CheckpointError, resolve_model_dir
from tests.helpers.flowseg_fixtures import EXPRESSION, components, image, one_torch_thread, pipeline  # noqa: F401


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return pipeline().save_pretrained(tmp_path_factory.mktemp("flowseg") / "model")


def _same_outputs(a, b, img=None):
    img = image(12) if img is None else img
    pa, pb = a.predict(img, EXPRESSION), b.predict(img, EXPRESSION)
    assert np.array_equal(pa.scores, pb.scores)
    assert np.array_equal(pa.refined_logits, pb.refined_logits)
    assert np.array_equal(pa.candidates.masks, pb.candidates.masks)


# --------------------------------------------------------------------------- own format

def test_round_trip_gives_identical_outputs(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["flowseg_config.json",
                                                        "model.safetensors", "tokenizer"]
    loaded = FlowSegPipeline.from_pretrained(saved, device="cpu")
    ref = pipeline().model.state_dict()
    got = loaded.model.state_dict()
    assert list(got) == list(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert loaded.config.to_dict() == pipeline().config.to_dict()
    _same_outputs(pipeline(), loaded)
    # tied LM head stays tied and is stored once
    llm = loaded.model.llm
    assert llm.lm_head.weight.data_ptr() == llm.model.embed_tokens.weight.data_ptr()
    assert "llm.lm_head.weight" not in load_file(str(saved / "model.safetensors"))


def test_round_trip_of_an_ablated_model(tmp_path):
    pipe = pipeline(semantic_refinement=False, boundary_refinement=False)
    loaded = FlowSegPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "m"), device="cpu")
    assert loaded.model.bar is None and loaded.model.decoder.layers[0].semantic_attn is None
    _same_outputs(pipe, loaded)


def _edit_weights(saved, tmp_path, edit):
    import shutil
    target = tmp_path / "edited"
    shutil.copytree(saved, target)
    state = load_file(str(target / "model.safetensors"))
    edit(state)
    save_file(state, str(target / "model.safetensors"))
    return target


def test_missing_key_is_named(saved, tmp_path):
    key = "decoder.layers.1.condition_attn.out_proj.weight"
    folder = _edit_weights(saved, tmp_path, lambda s: s.pop(key))
    with pytest.raises(CheckpointError) as err:
        FlowSegPipeline.from_pretrained(folder, device="cpu")
    msg = str(err.value)
    assert "model.safetensors" in msg and "missing 1 key" in msg and key in msg


def test_unexpected_key_is_named(saved, tmp_path):
    folder = _edit_weights(saved, tmp_path,
                           lambda s: s.__setitem__("decoder.layers.0.extra_gate.weight",
                                                   torch.zeros(2)))
    with pytest.raises(CheckpointError, match=r"unexpected 1 key.*decoder.layers.0.extra_gate"):
        FlowSegPipeline.from_pretrained(folder, device="cpu")


def test_wrong_shape_is_named(saved, tmp_path):
    folder = _edit_weights(saved, tmp_path,
                           lambda s: s.__setitem__("bar.alpha", torch.zeros(3)))
    with pytest.raises(CheckpointError, match=r"wrong shape.*bar.alpha \(3,\) vs \(\)"):
        FlowSegPipeline.from_pretrained(folder, device="cpu")


def test_weights_of_an_ablated_model_do_not_load_into_the_full_one(saved, tmp_path):
    """A config that switches BAR on over weights saved without it fails, naming bar.*."""
    import shutil
    folder = tmp_path / "noBAR"
    pipeline(boundary_refinement=False).save_pretrained(folder)
    cfg = json.loads((folder / "flowseg_config.json").read_text())
    cfg["boundary_refinement"] = True
    (folder / "flowseg_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing \d+ key\(s\): bar\."):
        FlowSegPipeline.from_pretrained(folder, device="cpu")
    shutil.rmtree(folder)


def test_config_problems_are_explained(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a FlowSeg folder.*from_components"):
        FlowSegPipeline.from_pretrained(tmp_path, device="cpu")
    cfg = json.loads((saved / "flowseg_config.json").read_text())
    for change, match in (({"format_version": 99}, "format_version 99"),
                          ({"mystery": 1}, "unknown fields"),
                          ({"condition_mode": "mean"}, "condition_mode")):
        bad = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        bad.mkdir()
        (bad / "flowseg_config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(ValueError, match=match):
            FlowSegPipeline.from_pretrained(bad, device="cpu")


def test_config_refuses_unknown_keys_naming_them_and_the_file(tmp_path):
    import re

    from engine.flowseg.config import CONFIG_NAME, FlowSegConfig
    from engine.flowseg.demo import DEMO_DIR
    shipped = FlowSegConfig.load(DEMO_DIR)                   # the shipped file loads as it is
    path = shipped.save(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "mystery": 1}))
    assert path.name == CONFIG_NAME
    with pytest.raises(ValueError, match=re.escape(f"{path} has unknown fields ['mystery']")):
        FlowSegConfig.load(tmp_path)


# --------------------------------------------------------------------------- base models

def test_from_components_loads_the_public_towers_and_adds_the_tokens():
    c = components()
    pipe = FlowSegPipeline.from_components(c.siglip, c.sam, c.llm, device="cpu", seed=0)
    model = pipe.model
    sig_ref = {k.removeprefix("vision_model."): v for k, v in c.models["siglip"].state_dict().items()
               if k.startswith("vision_model.")}
    sig = {k.removeprefix("vision_model."): v for k, v in model.siglip.state_dict().items()}
    assert sig.keys() == sig_ref.keys() and all(torch.equal(sig[k], sig_ref[k]) for k in sig)
    sam_ref = {k: v for k, v in c.models["sam"].state_dict().items()
               if k.startswith("vision_encoder.")}
    assert sam_ref.keys() == model.sam.state_dict().keys()
    assert all(torch.equal(model.sam.state_dict()[k], v) for k, v in sam_ref.items())
    old_vocab = c.models["llm"].config.vocab_size
    emb = model.llm.get_input_embeddings().weight
    assert emb.shape[0] == old_vocab + 3 == len(pipe.tokenizer)
    assert torch.equal(emb[:old_vocab], c.models["llm"].get_input_embeddings().weight)
    assert [pipe.config.p_open_id, pipe.config.p_close_id, pipe.config.seg_id] == \
        list(range(old_vocab, old_vocab + 3))
    # X-SAM's layers 12/18/24 of 24 become the half / three-quarter / last layer
    assert pipe.config.sam_feature_layers == (1, 2, 3)
    assert pipe.config.notes["source"] == "from_components"
    mask = pipe(image(13), EXPRESSION)
    assert mask.shape == (40, 56) and mask.dtype == np.bool_


def test_from_components_is_seeded_and_round_trips(tmp_path):
    c = components()
    a = FlowSegPipeline.from_components(c.siglip, c.sam, c.llm, device="cpu", seed=4)
    b = FlowSegPipeline.from_components(c.siglip, c.sam, c.llm, device="cpu", seed=4)
    _same_outputs(a, b)
    loaded = FlowSegPipeline.from_pretrained(a.save_pretrained(tmp_path / "m"), device="cpu")
    _same_outputs(a, loaded)


def test_hugging_face_cache_layout_without_downloading(monkeypatch):
    c = components()
    snapshot = next((c.entries["sam"] / "snapshots").iterdir())
    assert resolve_model_dir(c.entries["sam"], "SAM") == snapshot
    assert resolve_model_dir(snapshot, "SAM") == snapshot
    monkeypatch.setenv("HF_HUB_CACHE", str(c.cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("FlowLabelTest/sam", "SAM") == snapshot
    with pytest.raises(FileNotFoundError, match="never downloads"):
        resolve_model_dir("Nobody/not-cached", "SAM")
    from_cache = FlowSegPipeline.from_components("FlowLabelTest/siglip", c.entries["sam"],
                                                 c.entries["llm"], device="cpu", seed=0)
    from_dirs = FlowSegPipeline.from_components(c.siglip, c.sam, c.llm, device="cpu", seed=0)
    _same_outputs(from_cache, from_dirs)


def test_wrong_or_incomplete_towers_are_named(tmp_path):
    import shutil
    c = components()
    with pytest.raises(ValueError, match=r"SigLIP: .* model_type 'sam'"):
        FlowSegPipeline.from_components(c.sam, c.sam, c.llm, device="cpu")
    with pytest.raises(FileNotFoundError, match="LLM: .* has no config.json"):
        FlowSegPipeline.from_components(c.siglip, c.sam, tmp_path, device="cpu")
    broken = tmp_path / "sam"
    shutil.copytree(c.sam, broken)
    state = load_file(str(broken / "model.safetensors"))
    state.pop("vision_encoder.layers.2.mlp.lin2.bias")
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"SAM weights .*missing 1 key.*layers.2.mlp.lin2.bias"):
        FlowSegPipeline.from_components(c.siglip, broken, c.llm, device="cpu")


# --------------------------------------------------------------------------- registry factory

def test_factory_without_a_folder_is_not_configured(monkeypatch):
    from engine.flowseg import load
    monkeypatch.delenv("FLOWLABEL_FLOWSEG_DIR", raising=False)
    with pytest.raises(engine.EngineNotConfigured, match="--flowseg-dir / FLOWLABEL_FLOWSEG_DIR"):
        load()
    monkeypatch.setenv("FLOWLABEL_FLOWSEG_DIR", "/nonexistent/flowseg")
    with pytest.raises(FileNotFoundError, match="/nonexistent/flowseg does not exist"):
        load()


def test_factory_through_the_registry(saved, monkeypatch):
    from engine.flowseg import load
    monkeypatch.setenv("FLOWLABEL_FLOWSEG_DIR", str(saved))
    engine.register_engine("flowseg-test", load, kinds=("image",))
    try:
        seg = engine.load_segmenter("flowseg-test", device="cpu")
    finally:
        engine.unregister_engine("flowseg-test")
    img = image(14)
    mask = seg.segment_image(img, EXPRESSION)
    assert mask.dtype == np.bool_ and mask.shape == img.shape[:2]
    cands = seg.candidates(img, EXPRESSION)
    assert len(cands) == 5 and np.array_equal(cands.masks[0], mask)
    assert np.array_equal(mask, pipeline()(img, EXPRESSION))


def test_factory_takes_a_cached_repo_id(saved, monkeypatch, tmp_path):
    from engine.flowseg import load
    from tests.helpers.hf_cache import write_hf_cache_entry
    write_hf_cache_entry(tmp_path / "hub", "someone/flowseg-refcoco", saved, "feed0001")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    img = image(14)
    assert np.array_equal(load(model_dir="someone/flowseg-refcoco", device="cpu").segment_image(img, EXPRESSION),
                          pipeline()(img, EXPRESSION))
    with pytest.raises(FileNotFoundError, match="models download.*--flowseg-dir"):
        load(model_dir="someone/not-cached", device="cpu")
