"""The training CLIs (`python -m engine.flowrvs.train`, `python -m engine.flowseg.train`): every
training command the demo recipes print parses into a TrainConfig, an option left out takes
TrainConfig's default, and a checkpoint's config (new or from before TrainConfig) rebuilds."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import shlex

import pytest

from engine.flowrvs import demo as rvs_demo
from engine.flowrvs import train as rvs_train
from engine.flowrvs.trainer import TrainConfig as RVSConfig
from engine.flowseg import demo as seg_demo
from engine.flowseg import train as seg_train
from engine.flowseg.trainer import TrainConfig as SegConfig


def train_commands(recipe: str, module: str) -> list[list[str]]:
    """The argv of every `python -m <module>` command of a printed recipe (continuation lines
    joined, comments dropped)."""
    commands = []
    for line in recipe.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[:3] == ["python", "-m", module]:
            commands.append(words[3:])
    return commands


def printed(main, *argv) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_every_flowrvs_recipe_command_parses():
    commands = train_commands(printed(rvs_demo.main, "recipe"), "engine.flowrvs.train")
    assert len(commands) == 4
    configs = [rvs_train.parse_args(argv) for argv in commands]
    assert all(isinstance(c, RVSConfig) and c.tiny for c in configs)
    vae_a, vae_c, flow_b, flow_b2 = configs
    assert vae_a.stage == "vae" and vae_a.train_vae_encoder and vae_a.ema_decay == 0
    assert vae_c.vae_from == "runs/demo_a/pipeline" and not vae_c.train_vae_encoder
    assert flow_b.stage == "flow" and flow_b.train_text_encoder and flow_b.text_length == 16
    assert flow_b.precompute_latents and flow_b.max_videos == 700 and flow_b.ema_decay == 0.998
    assert flow_b2.resume == "auto" and flow_b2.bbs_p == 0.9 and flow_b2.max_steps == 9500


@pytest.mark.parametrize("ablation", [False, True])
def test_every_flowseg_recipe_command_parses(ablation):
    text = printed(seg_demo.main, "recipe", *(["--ablation"] if ablation else []))
    commands = train_commands(text, "engine.flowseg.train")
    assert len(commands) == (2 * len(seg_demo.ABLATION) if ablation else 4)
    configs = [seg_train.parse_args(argv) for argv in commands]
    assert all(isinstance(c, SegConfig) and c.batch_size == 16 and c.points == 1024
               for c in configs if not c.resume)
    if ablation:
        assert configs[2].switch == ("condition_refinement=off",)
    else:
        assert configs[-1].resume and configs[-1].stop_at == 2500 and configs[-1].steps == 4000


def test_options_left_out_take_the_config_defaults():
    assert rvs_train.parse_args(["--data", "d", "--out", "o"]) == RVSConfig("d", "o")
    assert seg_train.parse_args(["--data", "d", "--out", "o", "--preset", "tiny"]) == \
        SegConfig("d", "o", preset="tiny")


def test_flowrvs_flags_and_resolved_defaults():
    c = rvs_train.parse_args(["--data", "d", "--out", "o", "--no-dvi", "--resume",
                              "--size", "32", "48", "--no-bf16"])
    assert (c.dvi, c.resume, c.size, c.bf16) == (False, "auto", (32, 48), False)
    assert not c.train_text_encoder and c.text_length == 256
    assert rvs_train.parse_args(["--data", "d", "--out", "o", "--resume", "x.pt"]).resume == "x.pt"
    tiny = RVSConfig("d", "o", tiny=True)       # defaults that follow --tiny, resolved once
    assert tiny.train_text_encoder and tiny.train_vae_encoder and tiny.text_length == 16
    assert not RVSConfig("d", "o", tiny=True, vae_from="v").train_vae_encoder
    assert not RVSConfig("d", "o", tiny=True, train_text_encoder=False).train_text_encoder
    with pytest.raises(ValueError, match="stage must be one of flow, vae"):
        RVSConfig("d", "o", stage="dit")


def test_flowseg_needs_one_weight_source():
    with pytest.raises(SystemExit) as e:
        seg_train.parse_args(["--data", "d", "--out", "o"])
    assert e.value.code == 2
    with pytest.raises(ValueError, match="exactly one of --preset, --init, --components"):
        SegConfig("d", "o", preset="tiny", init="x")
    assert SegConfig("d", "o", resume=True).resume


@pytest.mark.parametrize("cls", [RVSConfig, SegConfig])
def test_saved_configs_rebuild_and_unknown_keys_are_refused(cls):
    extra = {} if cls is RVSConfig else {"preset": "tiny"}
    config = cls("d", "o", seed=5, **extra)
    saved = dataclasses.asdict(config)
    assert cls.from_dict(saved) == config
    # before TrainConfig, checkpoints held vars(argparse.Namespace): same keys, lists for tuples
    older = {k: list(v) if isinstance(v, tuple) else v for k, v in saved.items()}
    assert cls.from_dict(older) == config
    with pytest.raises(ValueError, match=r"run/trainer.pt has unknown fields \['mystery'\]"):
        cls.from_dict({**saved, "mystery": 1}, "run/trainer.pt")
