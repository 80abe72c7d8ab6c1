"""SAM 2 weights load strictly from a folder, a Hugging Face cache entry or a cached repo id."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import EngineNotConfigured, EngineService
from engine.sam2 import load
from engine.sam2.checkpoints import WeightsError, load_model, resolve_model_dir
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("family", ["tiny", "edgetam"])
def test_loads_from_folder_cache_entry_and_repo_id(monkeypatch, family):
    image_ref, video_ref = fx.models(family)
    repo, entry = fx.FAMILIES[family][0], fx.cache_entry(family)
    monkeypatch.setenv("HF_HUB_CACHE", str(fx.hf_cache()))
    for spec in (fx.model_dir(family), entry, repo):
        image, video = load_model(spec, video=False), load_model(spec, video=True)
        assert (type(image), type(video)) == (type(image_ref), type(video_ref))
        assert _same_weights(image, image_ref) and _same_weights(video, video_ref)
    assert resolve_model_dir(repo) == entry / "snapshots" / fx.SNAPSHOT


def test_repo_not_in_cache_says_how_to_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="models download facebook/sam2.1-hiera-small"):
        resolve_model_dir("facebook/sam2.1-hiera-small")


def test_unfinished_download_is_named(tmp_path):
    entry = tmp_path / "models--facebook--sam2.1-hiera-tiny"
    (entry / "snapshots" / "abc").mkdir(parents=True)
    shutil.copy(fx.model_dir() / "config.json", entry / "snapshots" / "abc" / "config.json")
    with pytest.raises(FileNotFoundError, match="did not finish"):
        resolve_model_dir(entry)


STRICT_CASES = [("tiny", "mask_decoder.iou_prediction_head.proj_out.weight", "Sam2Model"),
                # EdgeTAM's backbone is built by timm inside transformers: its keys are checked too
                ("edgetam", "vision_encoder.backbone.timm_model.stem.conv1.c.weight", "EdgeTamModel")]


@pytest.mark.parametrize("change", ["drop", "extra", "shape"])
@pytest.mark.parametrize("family, key, class_name", STRICT_CASES)
def test_strict_about_keys(tmp_path, change, family, key, class_name):
    folder = tmp_path / "broken"
    shutil.copytree(fx.model_dir(family), folder)
    state = load_file(folder / "model.safetensors")
    if change == "drop":
        del state[key]
    elif change == "extra":
        state["mask_decoder.surprise.weight"] = torch.zeros(3)
    else:
        state[key] = torch.zeros(2, 2)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(Exception, match=f"{key if change != 'extra' else 'surprise'}") as err:
        load_model(folder, video=False)
    assert f"does not match {class_name}" in str(err.value)


def test_wrong_model_type_and_image_only_weights(tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(fx.model_dir(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(WeightsError, match="'bert' model"):
        load_model(folder, video=False)
    image_only = tmp_path / "image-only"
    fx.models()[0].save_pretrained(image_only)
    assert load_model(image_only, video=False) is not None
    with pytest.raises(WeightsError, match="cannot track"):
        load_model(image_only, video=True)


def test_unconfigured_engine_says_what_to_set(monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    with pytest.raises(EngineNotConfigured, match="FLOWLABEL_SAM_MODEL"):
        load()
    service = EngineService(device="cpu")
    assert not service.sam_configured()
    with pytest.raises(EngineNotConfigured, match="--sam-model"):
        service.sam_prepare(("m", 0), fx.image())
    assert EngineService(device="cpu", paths={"sam2": {"model": str(fx.model_dir())}}).sam_configured()


def test_edgetam_without_timm_says_what_to_install(monkeypatch):
    """None in sys.modules is how Python marks a module as unimportable: `import timm` raises."""
    import sys
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(WeightsError, match=r"EdgeTAM model.*timm does not import.*pip install -r requirements.txt"):
        load_model(fx.model_dir("edgetam"), video=False)
    assert load_model(fx.model_dir(), video=False) is not None  # SAM 2.1 needs no timm
