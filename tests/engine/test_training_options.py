"""The two training options prepared for the GPU run, both off by default: FlowRVS timesteps
leaned toward the start of the flow (--timestep-bias) and a position signal in FlowSeg's
queries (config.query_position / --query-position); and both trainers' --time-limit."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.flowrvs import losses as rvs_losses
from engine.flowrvs import train as rvs
from engine.flowrvs import trainer as rvs_trainer
from engine.flowseg import train as fs
from engine.flowseg import trainer as fs_trainer
from engine.flowseg.config import CONFIG_NAME, FlowSegConfig
from engine.flowseg.decoder import QueryGeometry
from engine.flowseg.pipeline import FlowSegPipeline
from engine.flowseg.presets import random_pipeline
from tests.helpers.flowseg_fixtures import (
    EXPRESSION,
    image,
    one_torch_thread,  # noqa: F401  (autouse)
    pipeline,
)

# --------------------------------------------------------------------------- FlowRVS timesteps


def rvs_args(tmp_path, *extra):
    from engine.demo_world import write_video_dataset
    data = tmp_path / "data"
    if not data.is_dir():
        write_video_dataset(data, seed=7, count=2, frames=5)
    return rvs.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--tiny",
                           "--size", "32", "32", "--threads", "1", "--batch-size", "2", *extra])


def test_bias_zero_is_the_release_sampler_draw_for_draw():
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(50):
        assert torch.equal(rvs_losses.sample_timesteps(4, 0.5, a), rvs_losses.sample_timesteps(4, 0.5, b, 0.0))


def test_biased_timesteps_follow_the_power_law_toward_the_start():
    g = torch.Generator().manual_seed(0)
    bias = 3.0
    t = torch.cat([rvs_losses.sample_timesteps(64, 0.0, g, bias) for _ in range(200)])   # 12,800 draws
    assert t.min() >= 1 and t.max() <= 1000 and torch.equal(t, t.floor())
    x = t / 1000
    # P(x <= a) = a ** (1 + bias); checked at several points (Kolmogorov-Smirnov style)
    for a in (0.25, 0.5, 0.75, 0.9):
        assert float((x <= a).float().mean()) == pytest.approx(a ** (1 + bias), abs=0.015), a
    assert float(x.mean()) == pytest.approx((1 + bias) / (2 + bias), abs=0.01)   # 0.8
    # the uniform sampler puts half below t=500; the biased one 1/16
    assert float((t < 500).float().mean()) < 0.08


def test_bias_keeps_the_boundary_share_and_refuses_negatives():
    g = torch.Generator().manual_seed(1)
    t = torch.cat([rvs_losses.sample_timesteps(8, 0.5, g, 4.0) for _ in range(100)])
    assert float((t == 1000).float().mean()) >= 0.5
    with pytest.raises(ValueError, match="timestep bias"):
        rvs_losses.lean_toward_start(torch.rand(3), -1.0)


def test_trainer_flag_reaches_the_sampler_and_is_off_by_default(tmp_path):
    assert rvs_args(tmp_path).timestep_bias == 0.0
    assert rvs_args(tmp_path, "--timestep-bias", "2.5").timestep_bias == 2.5


def test_flowrvs_time_limit_stops_and_exports(tmp_path):
    args = rvs_args(tmp_path, "--max-steps", "1000", "--time-limit", "0", "--save-every",
                    "500", "--timestep-bias", "2")
    trainer = rvs_trainer.run(args)
    assert trainer.step_count == 1                    # the first step passes a 0 s limit
    assert (tmp_path / "run" / "pipeline" / "flowrvs_config.json").is_file()
    assert torch.load(tmp_path / "run" / rvs_trainer.CHECKPOINT, weights_only=False)["step"] == 1


# --------------------------------------------------------------------------- FlowSeg position


def test_query_geometry_features_locate_the_mask():
    logits = torch.full((1, 2, 16, 16), -20.0)
    logits[0, 0, 2:6, 1:5] = 20.0                     # top-left square, 16 of 256 pixels
    logits[0, 1, 10:16, 8:16] = 20.0                  # bottom-right block, 48 pixels
    f = QueryGeometry.features(logits)
    assert f.shape == (1, 2, 5)
    step = 2 / 15
    x0, y0 = -1 + step * 2.5, -1 + step * 3.5        # centroids on the [-1, 1] grid
    np.testing.assert_allclose(f[0, 0, :2].numpy(), [x0, y0], atol=1e-4)
    assert f[0, 1, 0] > 0 and f[0, 1, 1] > 0          # right and bottom
    np.testing.assert_allclose(f[0, :, 4].numpy(), [16 / 256 * 2 - 1, 48 / 256 * 2 - 1], atol=1e-5)
    assert f[0, 1, 2] > f[0, 0, 2]                    # wider spread in x


def test_query_position_is_off_by_default_and_recorded_when_on(tmp_path):
    assert FlowSegConfig().query_position is False
    off = pipeline()
    assert off.model.decoder.geometry is None
    assert not any(".geometry." in k for k in off.model.state_dict())
    on = random_pipeline("tiny", seed=0, device="cpu", query_position=True)
    keys = [k for k in on.model.state_dict() if k.startswith("decoder.geometry.")]
    assert keys and set(on.model.state_dict()) - set(off.model.state_dict()) == set(keys)
    pred = on.predict(image(1), EXPRESSION, k=3)
    assert pred.candidates.masks.shape[0] == 3

    on.save_pretrained(tmp_path / "on")
    assert json.loads((tmp_path / "on" / CONFIG_NAME).read_text())["query_position"] is True
    loaded = FlowSegPipeline.from_pretrained(tmp_path / "on", device="cpu")
    assert loaded.config.query_position is True
    for k, v in on.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k
    a = on.predict(image(2), EXPRESSION, k=3)
    b = loaded.predict(image(2), EXPRESSION, k=3)
    np.testing.assert_array_equal(a.candidates.masks, b.candidates.masks)


def test_weights_with_and_without_the_position_part_load_only_into_their_own_config(tmp_path):
    from engine.flowseg.checkpoints import CheckpointError
    on = random_pipeline("tiny", seed=0, device="cpu", query_position=True)
    on.save_pretrained(tmp_path / "on")
    path = tmp_path / "on" / CONFIG_NAME
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "query_position": False}))
    with pytest.raises(CheckpointError, match="geometry"):
        FlowSegPipeline.from_pretrained(tmp_path / "on", device="cpu")
    path.write_text(json.dumps({**config, "query_positions": True}))   # a misspelt key
    with pytest.raises(ValueError, match="unknown fields"):
        FlowSegPipeline.from_pretrained(tmp_path / "on", device="cpu")
    path.write_text(json.dumps({**config, "query_position": "yes"}))
    with pytest.raises(ValueError, match="query_position must be true or false"):
        FlowSegPipeline.from_pretrained(tmp_path / "on", device="cpu")


def test_adding_the_position_part_to_a_trained_model_changes_nothing_until_trained(tmp_path):
    pipe = random_pipeline("tiny", seed=0, device="cpu")
    before = pipe.predict(image(3), EXPRESSION, k=4)
    fs_trainer.add_query_position(pipe)
    assert pipe.config.query_position is True and pipe.model.decoder.geometry is not None
    after = pipe.predict(image(3), EXPRESSION, k=4)
    np.testing.assert_array_equal(before.scores, after.scores)
    np.testing.assert_array_equal(before.candidates.masks, after.candidates.masks)
    with torch.no_grad():                             # once it learns, the selection moves
        pipe.model.decoder.geometry.mlp.layers[-1].weight.normal_()
    moved = pipe.predict(image(3), EXPRESSION, k=4)
    assert not np.array_equal(before.scores, moved.scores)
    pipe.save_pretrained(tmp_path / "p")
    assert FlowSegPipeline.from_pretrained(tmp_path / "p", device="cpu").config.query_position


def test_flowseg_trainer_flag_and_time_limit(tmp_path):
    from engine.demo_world import write_image_dataset
    data = tmp_path / "data"
    write_image_dataset(data, seed=3, count=4, size=48)
    common = ["--data", str(data), "--batch-size", "2", "--points", "64", "--threads", "1",
              "--steps", "1000", "--save-every", "500", "--log-every", "1"]
    assert fs.main([*common, "--out", str(tmp_path / "a"), "--preset", "tiny",
                    "--query-position", "--time-limit", "0"]) == 0
    state = torch.load(tmp_path / "a" / fs_trainer.TRAINER_STATE, weights_only=False)
    assert state["step"] == 1 and state["config"]["query_position"] is True
    saved = json.loads((tmp_path / "a" / "pipeline" / CONFIG_NAME).read_text())
    assert saved["query_position"] is True
    # --init from a model without it adds it; the run's saved model carries it
    plain = random_pipeline("tiny", seed=0, device="cpu")
    plain.save_pretrained(tmp_path / "plain")
    assert fs.main([*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "plain"),
                    "--query-position", "--time-limit", "0"]) == 0
    loaded = FlowSegPipeline.from_pretrained(tmp_path / "b" / "pipeline", device="cpu")
    assert loaded.config.query_position and loaded.model.decoder.geometry is not None
    assert math.isfinite(float(loaded.model.decoder.geometry.mlp.layers[0].weight.sum()))
