"""Engine plumbing: registry, EngineService locking/cancel/progress/validation, pick_device.

The segmenters here are test-only stand-ins (a brightness threshold); no real engine runs.
"""
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import engine
from engine import registry


class Bright:
    """Test-only segmenter: pixels brighter than 127 (mean over RGB)."""

    def __init__(self, device=None, **paths):
        self.device, self.paths = device, paths

    def segment_video(self, frames, expression, progress=None):
        return frames.mean(axis=-1) > 127

    def segment_image(self, image, expression):
        return image.mean(axis=-1) > 127


@pytest.fixture
def register():
    """Register test segmenters; always unregister them afterwards."""
    names = []

    def _register(name, factory=Bright, **kw):
        engine.register_engine(name, factory, **kw)
        names.append(name)

    yield _register
    for name in names:
        engine.unregister_engine(name)


def video(t=2, h=4, w=5):
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[:, :, : w // 2] = 255
    return frames


def test_unknown_engine_with_empty_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    with pytest.raises(engine.UnknownEngineError, match="no segmentation engine is installed yet"):
        engine.load_segmenter("flowrvs")
    assert engine.available_segmenters() == []


def test_unknown_engine_lists_registered_names(register):
    register("test-bright")
    register("test-alpha")
    with pytest.raises(engine.UnknownEngineError) as err:
        engine.EngineService(device="cpu").segment_image("nope", video()[0], "x")
    msg = str(err.value)
    assert "'nope'" in msg and "test-alpha" in msg and "test-bright" in msg
    assert isinstance(err.value, ValueError)


def test_registry_round_trip(register):
    register("test-bright", kinds=("image",), description="threshold")
    assert "test-bright" in engine.available_segmenters()
    assert "test-bright" in engine.available_segmenters("image")
    assert "test-bright" not in engine.available_segmenters("video")
    assert engine.engine_info("test-bright").description == "threshold"
    seg = engine.load_segmenter("test-bright", device="cpu", ckpt="/m/a.pth")
    assert isinstance(seg, Bright) and seg.device == "cpu" and seg.paths == {"ckpt": "/m/a.pth"}
    assert engine.load_segmenter("test-bright", device="cpu") is not seg  # registry never caches
    with pytest.raises(ValueError, match="already registered"):
        engine.register_engine("test-bright", Bright)
    with pytest.raises(ValueError, match="subset of"):
        engine.register_engine("test-bad", Bright, kinds=("audio",))
    engine.unregister_engine("test-bright")
    assert "test-bright" not in engine.available_segmenters()


def test_abilities_are_declared_read_without_loading_and_checked_at_load(register):
    register("test-offers-decl", kinds=("image",), abilities=[engine.Ability.CANDIDATES])
    info = engine.engine_info("test-offers-decl")
    assert info.abilities == {engine.Ability.SEGMENT_IMAGE, engine.Ability.CANDIDATES}
    assert info.kinds == ("image",) and "test-offers-decl" in engine.engines_with(engine.Ability.CANDIDATES)
    # Bright has no candidates(): the declaration is refused when the engine loads, naming the method
    with pytest.raises(engine.EngineContractError, match=r"has no candidates\(\)"):
        engine.load_segmenter("test-offers-decl", device="cpu")
    with pytest.raises(ValueError, match="must be among"):
        engine.register_engine("test-bad-ability", Bright, abilities=["telepathy"])
    with pytest.raises(ValueError, match="declare an ability"):
        engine.register_engine("test-nothing", Bright, kinds=())


def test_the_built_in_engines_declare_what_they_do():
    A = engine.Ability
    assert engine.engine_info("sam2").abilities == {A.INTERACTIVE, A.TRACKING}
    assert "sam2" not in engine.available_segmenters()  # it segments no expression
    assert engine.engine_info("sam3").abilities == {A.SEGMENT_IMAGE, A.SEGMENT_VIDEO, A.CANDIDATES,
                                                   A.VIDEO_CANDIDATES, A.STREAMS_FRAMES}
    assert engine.engines_with(A.CANDIDATES) == ["flowseg", "flowseg-demo", "sam3"]
    assert engine.engine_info("flowrvs").kinds == ("video", "image")


def test_service_segments_and_caches_instances(register):
    built = []

    def factory(device=None, **paths):
        built.append((device, paths))
        return Bright(device, **paths)

    register("test-bright", factory)
    service = engine.EngineService(device="cpu", paths={"test-bright": {"ckpt": "a", "vae": "v"}})
    out = service.segment_video("test-bright", video(), "the white half")
    assert out.dtype == bool and out.shape == (2, 4, 5)
    assert out[:, :, :2].all() and not out[:, :, 2:].any()
    service.segment_image("test-bright", video()[0], "again")
    assert built == [("cpu", {"ckpt": "a", "vae": "v"})]
    service.segment_image("test-bright", video()[0], "other weights", ckpt="b")
    assert built[-1] == ("cpu", {"ckpt": "b", "vae": "v"})  # explicit kwargs win
    service.segment_image("test-bright", video()[0], "cached", ckpt="a")
    assert len(built) == 2


def test_lock_serialises_concurrent_calls(register):
    spans = []

    class Slow(Bright):
        def segment_video(self, frames, expression, progress=None):
            start = time.perf_counter()
            time.sleep(0.05)  # unlocked, three threads would overlap here
            spans.append((start, time.perf_counter()))
            return super().segment_video(frames, expression)

    register("test-slow", Slow)
    service = engine.EngineService(device="cpu")
    threads = [threading.Thread(target=service.segment_video, args=("test-slow", video(), "x"))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    spans.sort()
    assert len(spans) == 3
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_cancel_from_another_thread_stops_a_long_run(register):
    started, cancelled = threading.Event(), threading.Event()
    steps = []

    class Long(Bright):
        def segment_video(self, frames, expression, progress=None):
            for i in range(1000):
                steps.append(i)
                progress(i / 1000, f"step {i}")  # raises Cancelled once cancel() is called
                started.set()
                time.sleep(0.01)
            return super().segment_video(frames, expression)

    register("test-long", Long)
    service = engine.EngineService(device="cpu")

    def run():
        with pytest.raises(engine.Cancelled):
            service.segment_video("test-long", video(), "x")
        cancelled.set()

    threading.Thread(target=run).start()
    assert started.wait(5)
    service.cancel()
    assert cancelled.wait(5)
    assert len(steps) < 1000
    # The next call clears the event, so the service stays usable.
    register("test-bright")
    assert service.segment_video("test-bright", video(), "x").shape == (2, 4, 5)


def test_cancel_discards_result_of_a_segmenter_that_never_reports(register):
    service = engine.EngineService(device="cpu")

    class Silent(Bright):
        def segment_image(self, image, expression):
            service.cancel()  # stands in for a click arriving mid-run
            return super().segment_image(image, expression)

    register("test-silent", Silent)
    with pytest.raises(engine.Cancelled):
        service.segment_image("test-silent", video()[0], "x")


def test_progress_is_forwarded(register):
    class Reporting(Bright):
        def segment_video(self, frames, expression, progress=None):
            for i in range(3):
                progress((i + 1) / 3, f"step {i + 1}/3")
            return super().segment_video(frames, expression)

    register("test-reporting", Reporting)
    seen = []
    engine.EngineService(device="cpu").segment_video(
        "test-reporting", video(), "x", progress=lambda f, m: seen.append((f, m)))
    assert seen == [(1 / 3, "step 1/3"), (2 / 3, "step 2/3"), (1.0, "step 3/3")]


@pytest.mark.parametrize("bad, returned", [
    (lambda frames: np.zeros(frames.shape[1:3], bool), r"bool array of shape \[4, 5\]"),
    (lambda frames: (frames.mean(axis=-1) > 127).astype(np.uint8), "uint8 array"),
    (lambda frames: [[True]], "returned list"),
])
def test_wrong_output_is_a_clear_error(register, bad, returned):
    class Broken(Bright):
        def segment_video(self, frames, expression, progress=None):
            return bad(frames)

    register("test-broken", Broken)
    service = engine.EngineService(device="cpu")
    with pytest.raises(RuntimeError, match="engine 'test-broken' broke the segmenter") as err:
        service.segment_video("test-broken", video(), "x")
    assert "shape [2, 4, 5]" in str(err.value)
    assert re.search(returned, str(err.value))


@pytest.mark.parametrize("frames, match", [
    (video().astype(np.float32), "must be uint8"),
    (video()[0], r"\[T,H,W,3\]"),
    (np.zeros((2, 4, 5, 4), np.uint8), r"\[T,H,W,3\]"),
    ([[0]], r"\[T,H,W,3\]"),
    (np.zeros((0, 4, 5, 3), np.uint8), "at least one"),
])
def test_bad_video_input_teaches(register, frames, match):
    register("test-bright")
    with pytest.raises(ValueError, match=match):
        engine.EngineService(device="cpu").segment_video("test-bright", frames, "x")


@pytest.mark.parametrize("image, expression, match", [
    (video(), "x", r"\[H,W,3\]"),
    (video()[0].astype(np.float64), "x", "must be uint8"),
    (video()[0], "   ", "non-empty string"),
    (video()[0], None, "non-empty string"),
])
def test_bad_image_input_teaches(register, image, expression, match):
    register("test-bright")
    with pytest.raises(ValueError, match=match):
        engine.EngineService(device="cpu").segment_image("test-bright", image, expression)


def test_kind_mismatch_names_the_engines_that_can(register):
    register("test-video-only", kinds=("video",))
    register("test-bright")
    with pytest.raises(ValueError, match="does not segment images; engines that do: .*test-bright"):
        engine.EngineService(device="cpu").segment_image("test-video-only", video()[0], "x")


def test_pick_device(monkeypatch):
    import torch

    assert engine.pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert engine.pick_device("cpu") == "cpu"
    assert engine.pick_device("cuda:1") == "cuda:1"  # explicit wins, even without a GPU
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    assert engine.pick_device() == "cpu"


def test_import_engine_does_not_import_torch_or_gradio():
    code = "import sys, engine; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_run_is_the_one_route_for_videos_images_and_candidates(register):
    class Offers(Bright):
        def candidates(self, image, expression, k=5):
            pick = image.mean(axis=-1) > 127
            masks = np.stack([pick, np.zeros_like(pick), ~pick])  # the empty alternative is no fix
            return masks, np.array([0.9, 0.5, 0.1], np.float32)

    register("test-bright")
    register("test-offers", Offers, kinds=("image",), abilities=[engine.Ability.CANDIDATES])
    service = engine.EngineService(device="cpu")
    frames = video()
    plain = service.run("test-bright", "video", frames, "x")
    assert plain.candidates is None and (plain.masks == (frames.mean(axis=-1) > 127)).all()
    image = service.run("test-bright", "image", frames[:1], "x")
    assert image.masks.shape == (1, 4, 5) and image.candidates is None
    offered = service.run("test-offers", "image", frames[:1], "x")
    masks, scores = offered.candidates
    assert (offered.masks[0] == masks[0]).all() and len(masks) == 2 and scores.tolist() == pytest.approx([0.9, 0.1])
    assert (masks[1] == ~masks[0]).all()
