"""The shipped FlowSeg demo weights: they load strictly, fit the size budget, segment held-out
scenes of the shapes world, and the text steers them (shuffled expressions fall apart)."""
from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.demo_world import write_image_dataset
from engine.flowseg import demo
from engine.flowseg.data import RefCocoData
from engine.flowseg.pipeline import FlowSegPipeline
from tests.helpers.flowseg_fixtures import one_torch_thread  # noqa: F401  (autouse)

ASSETS = demo.DEMO_DIR.parent
BUDGET = 25 * 2 ** 20          # both demo models together


@pytest.fixture(scope="module")
def pipe():
    return FlowSegPipeline.from_pretrained(demo.DEMO_DIR, device="cpu")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """The first 40 images of the README's held-out world (seed 1000, never trained on)."""
    root = tmp_path_factory.mktemp("heldout") / "data"
    write_image_dataset(root, seed=demo.HELD_OUT_SEED, count=40, split="val")
    return RefCocoData(root, split="val")


def test_demo_weights_are_shipped_small_and_registered():
    sizes = sum(f.stat().st_size for d in ("flowseg-demo", "flowrvs-demo")
                for f in (ASSETS / d).rglob("*") if f.is_file())
    assert sizes <= BUDGET, f"demo weights take {sizes / 2**20:.1f} MiB, over 25 MiB"
    assert engine.engine_info("flowseg-demo").kinds == ("image",)
    seg = engine.load_segmenter("flowseg-demo", device="cpu")
    image = np.zeros((64, 64, 3), np.uint8)
    assert seg.candidates(image, "the red circle").masks.shape == (5, 64, 64)


def test_held_out_ciou_and_the_text_steers(pipe, held_out):
    """Floors under what the shipped weights measure (README: cIoU 0.396 on the whole held-out
    set, shuffled 0.160): the issue's aim is 0.70 and a 0.25 drop, which they miss. An untrained
    or text-blind model scores about the shuffled figure."""
    r = demo.evaluate(pipe, held_out)
    assert r["expressions"] >= 200
    assert r["cIoU"] >= 0.33, r
    assert r["cIoU"] - r["shuffled_cIoU"] >= 0.15, r
    assert r["cIoU_by_kind"]["attribute"]["cIoU"] >= 0.5, r     # "the red circle" works


def test_shuffled_order_moves_every_expression_to_another_image():
    ids = [1, 1, 1, 2, 2, 3, 3, 3, 4]
    order = demo.shuffled_order(ids, seed=5)
    assert sorted(order) == list(range(len(ids)))
    assert all(ids[order[i]] != ids[i] for i in range(len(ids)))


def test_ablation_cli_prints_one_row_per_model(pipe, tmp_path, capsys):
    code = demo.main(["ablation", "--model", f"a={demo.DEMO_DIR}", "--model", f"b={demo.DEMO_DIR}",
                      "--count", "2", "--seed", "7", "--limit", "3", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0 and "| a |" in out and "| b |" in out and (tmp_path / "r.json").is_file()


@pytest.mark.parametrize("ablation", [False, True])
def test_recipe_prints_runnable_commands(ablation, capsys):
    assert demo.main(["recipe"] + (["--ablation"] if ablation else [])) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line.startswith("python -m ")]
    if ablation:  # two training runs per variant, then one comparison of all four
        assert len(commands) == 2 * len(demo.ABLATION) + 1
        assert all(f"--model {name}=" in commands[-1] for name in demo.ABLATION)
    else:
        assert any("engine.flowseg.train" in c for c in commands)
