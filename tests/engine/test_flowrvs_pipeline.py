"""FlowRVSPipeline behaviour on tiny seeded components: equality with a step-by-step
reference written here from the release's description, shapes, windows, determinism,
text conditioning, cancel and input validation."""
import html
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine import Cancelled
from tests.helpers.flowrvs_fixtures import MAX_SIZE, assets, pipeline, video

# ----------------------------------------------------------------------------- reference

def reference_probs(frames, expression, *, in_channels, generation, timesteps, text_len,
                    vae_name="tuned_vae"):
    """The release's inference, step by step, from the seeded source models (not through
    engine.flowrvs): clean + tokenize + encode the text, resize/normalise/pad the frames,
    encode, Euler with the diffusers scheduler, decode, resize, sigmoid, un-pad."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import AutoTokenizer, UMT5EncoderModel
    a = assets()
    dit = a.models[in_channels]
    vae = a.models[vae_name]
    tokenizer = AutoTokenizer.from_pretrained(str(a.wan / "tokenizer"))
    text_encoder = UMT5EncoderModel.from_pretrained(str(a.wan / "text_encoder")).eval()
    with torch.no_grad():
        # text
        text = re.sub(r"\s+", " ", expression).strip()
        text = html.unescape(text)
        text = re.sub(r'["\\]+', "", text)
        tok = tokenizer([text], padding="max_length", max_length=text_len, truncation=True,
                        add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        hidden = text_encoder(tok.input_ids, tok.attention_mask).last_hidden_state[0]
        n = int(tok.attention_mask.sum())
        embeds = torch.zeros(1, text_len, hidden.shape[1])
        embeds[0, :n] = hidden[:n]
        # frames
        T, H, W = frames.shape[:3]
        ratio = min(MAX_SIZE[0] / H, MAX_SIZE[1] / W)
        h, w = int(H * ratio) // 16 * 16, int(W * ratio) // 16 * 16
        mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if generation == 1 \
            else ((0.5,) * 3, (0.5,) * 3)
        x = torch.stack([torch.from_numpy(np.asarray(
            Image.fromarray(f).resize((w, h), Image.BILINEAR), np.float32) / 255.0).permute(2, 0, 1)
            for f in frames])
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        while (x.shape[0] - 1) % 4:
            x = torch.cat([x, x[-1:]])
        # latents
        lm = torch.tensor(vae.config.latents_mean).view(1, 16, 1, 1, 1)
        ls = torch.tensor(vae.config.latents_std).view(1, 16, 1, 1, 1)
        z0 = vae.encode(x.transpose(0, 1)[None]).latent_dist.mean
        z0 = (z0 - lm) / ls
        # ODE
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
        if timesteps == "official":
            scheduler.set_timesteps(1)
        elif timesteps[0] == "linear":
            scheduler.set_timesteps(timesteps[1])
        else:
            ts = [float(t) for t in timesteps[1]]
            scheduler.set_timesteps(sigmas=[t / 1000 for t in ts], timesteps=ts)
        z = z0.clone()
        for t in scheduler.timesteps:
            inp = torch.cat([z, z0], dim=1) if in_channels == 32 else z
            v = dit(hidden_states=inp, timestep=t.expand(1), encoder_hidden_states=embeds,
                    return_dict=False)[0]
            z = scheduler.step(v, t, z, return_dict=False)[0]
        if generation == 1:
            z = z * ls + lm
        decoded = vae.decode(z).sample
        logits = decoded[0].mean(0) if decoded.shape[1] == 3 else decoded[0, 0]
        logits = F.interpolate(logits[:, None], size=(H, W), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[:, 0])[:T].numpy(), [float(t) for t in scheduler.timesteps]


CASES = [  # (dit file, in_channels, generation)
    ("dit32_model", 32, 1),
    ("dit16_ema", 16, 2),
]


@pytest.mark.parametrize("dit,channels,gen", CASES)
def test_official_one_step_equals_the_reference(dit, channels, gen):
    frames = video(7, 37, 53, seed=1)
    expr = '  the "red"   square &amp; the dog\\ '
    pipe = pipeline(dit)
    probs = pipe(frames, expr, return_probs=True)
    masks = pipe(frames, expr)
    ref, ts = reference_probs(frames, expr, in_channels=channels, generation=gen,
                              timesteps="official", text_len=pipe.config.max_sequence_length)
    assert ts == [1000.0]
    np.testing.assert_allclose(probs, ref, rtol=0, atol=1e-6)
    assert np.array_equal(masks, ref > 0.5)
    assert 0.02 < masks.mean() < 0.98         # a real mix, not a trivial constant mask


@pytest.mark.parametrize("dit,channels,gen", CASES)
@pytest.mark.parametrize("schedule,steps,expected", [
    ("linear", 4, [1000.0, 667.0, 334.0, 1.0]),
    ("mevis", 4, [1000.0, 900.0, 750.0, 501.0]),
    ("linear", 2, [1000.0, 1.0]),
])
def test_multi_step_schedules_equal_the_reference(dit, channels, gen, schedule, steps, expected):
    frames = video(9, 40, 60, seed=2)
    pipe = pipeline(dit)
    probs = pipe(frames, "the small red square", num_steps=steps, schedule=schedule,
                 return_probs=True)
    spec = (schedule, steps) if schedule == "linear" else (schedule, expected)
    ref, ts = reference_probs(frames, "the small red square", in_channels=channels,
                              generation=gen, timesteps=spec,
                              text_len=pipe.config.max_sequence_length)
    np.testing.assert_allclose(ts, expected, atol=1e-3)
    np.testing.assert_allclose(probs, ref, rtol=0, atol=1e-6)
    one = pipe(frames, "the small red square", return_probs=True)
    assert not np.allclose(probs, one)      # the steps change the answer


def test_stock_vae_equals_the_reference():
    from engine.flowrvs import FlowRVSPipeline
    a = assets()
    pipe = FlowRVSPipeline.from_official(a.wan, a.files["dit16_model"], None, device="cpu",
                                         max_size=MAX_SIZE)
    a.models["wan_vae"] = pipe.vae
    frames = video(5, seed=3)
    ref, _ = reference_probs(frames, "the cat", in_channels=16, generation=2,
                             timesteps="official", text_len=256, vae_name="wan_vae")
    np.testing.assert_allclose(pipe(frames, "the cat", return_probs=True), ref, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("T,H,W", [(1, 30, 40), (5, 37, 53), (7, 64, 33), (10, 25, 50),
                                   (4, 480, 640)])
def test_output_has_the_input_size(T, H, W):
    pipe = pipeline("dit16_model")
    frames = video(T, H, W, seed=T)
    masks = pipe(frames, "the dog")
    probs = pipe(frames, "the dog", return_probs=True)
    assert masks.shape == probs.shape == (T, H, W)
    assert masks.dtype == np.bool_ and probs.dtype == np.float32
    assert np.array_equal(masks, probs > 0.5)
    assert probs.min() >= 0.0 and probs.max() <= 1.0


def test_padding_frames_do_not_leak_into_real_ones():
    pipe = pipeline("dit16_model")
    frames = video(6, seed=4)   # padded to 9 by repeating frame 5
    padded = np.concatenate([frames, np.repeat(frames[-1:], 3, axis=0)])
    a = pipe(frames, "the dog", return_probs=True)
    b = pipe(padded, "the dog", return_probs=True)
    assert np.array_equal(a, b[:6])


def test_deterministic():
    pipe = pipeline("dit32_model")
    frames = video(9, seed=5)
    first = pipe(frames, "the big dog", num_steps=2, schedule="linear", return_probs=True)
    second = pipe(frames, "the big dog", num_steps=2, schedule="linear", return_probs=True)
    assert np.array_equal(first, second)


def test_the_text_steers_the_mask():
    pipe = pipeline("dit32_model")
    frames = video(9, seed=6)
    a = pipe(frames, "the red square on the left", return_probs=True)
    b = pipe(frames, "a small blue circle moving right", return_probs=True)
    assert np.abs(a - b).max() > 1e-3
    # cleaning: whitespace, entities and quotes do not change the expression
    c = pipe(frames, '  the "red"  square\ton the &#108;eft ', return_probs=True)
    assert np.array_equal(a, c)


# ----------------------------------------------------------------------------- windows

def test_window_covering_the_clip_equals_one_pass():
    pipe = pipeline("dit32_model")
    frames = video(10, seed=7)
    whole = pipe(frames, "the dog", return_probs=True)
    assert np.array_equal(pipe(frames, "the dog", return_probs=True, window=13), whole)
    assert np.array_equal(pipe(frames, "the dog", return_probs=True, window=81), whole)


def test_windows_blend_the_overlap_with_linear_ramps():
    pipe = pipeline("dit32_model")
    frames = video(13, seed=8)
    out = pipe(frames, "the dog", return_probs=True, window=9, overlap=2)
    assert out.shape == (13, 40, 60)
    # evenly spaced windows [0, 9) and [4, 13): 5 shared frames
    first = pipe(frames[0:9], "the dog", return_probs=True)
    second = pipe(frames[4:13], "the dog", return_probs=True)
    assert np.array_equal(out[:4], first[:4])           # only the first window sees them
    assert np.array_equal(out[9:], second[5:])          # only the second
    for i in range(4, 9):
        w_up = (i - 4 + 1) / 6                          # second window ramps up
        w_down = (9 - i) / 6                            # first window ramps down
        expected = (w_down * first[i].astype(np.float64) + w_up * second[i - 4]) / (w_up + w_down)
        np.testing.assert_allclose(out[i], expected, rtol=0, atol=1e-6)
    assert not np.allclose(first[4:9], second[:5])      # the overlap really is a blend
    masks = pipe(frames, "the dog", window=9, overlap=2)
    assert np.array_equal(masks, out > 0.5)


def test_long_video_progress_reports_every_window_and_step():
    pipe = pipeline("dit16_model")
    frames = video(30, 24, 36, seed=9)
    calls = []
    out = pipe(frames, "the dog", num_steps=2, schedule="linear", window=9,
               progress=lambda f, m: calls.append((f, m)))
    assert out.shape == (30, 24, 36)
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    windows = {m.split(":")[0] for _, m in calls if m.startswith("window")}
    assert len(windows) >= 4                           # 30 frames in windows of 9
    assert sum("step 2/2 done" in m for _, m in calls) == len(windows)


# ----------------------------------------------------------------------------- cancel, cache

def test_cancel_from_progress_stops_the_loop():
    pipe = pipeline("dit16_model")
    frames = video(30, 24, 36, seed=10)
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if "step 1/3 done" in message:
            raise Cancelled("user cancelled")

    calls = []
    hook = pipe.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(Cancelled):
            pipe(frames, "the dog", num_steps=3, schedule="linear", window=9, progress=progress)
    finally:
        hook.remove()
    assert len(calls) == 1                              # stopped right after the first step
    assert not any("window 2" in m for m in seen)
    # the pipeline is usable afterwards
    assert pipe(frames[:5], "the dog").shape == (5, 24, 36)


def test_interrupt_flag_is_the_solver_cancel_hook():
    from engine.flowrvs.solver import solve_flow
    stop = {"now": False}
    steps = []

    def velocity(z, t):
        steps.append(float(t))
        stop["now"] = True
        return torch.ones_like(z)

    with pytest.raises(Cancelled):
        solve_flow(velocity, torch.zeros(1, 2), torch.tensor([1000.0, 500.0]),
                   torch.tensor([1.0, 0.5, 0.0]), cancel=lambda: stop["now"])
    assert steps == [1000.0]


def test_prompt_embeddings_are_cached_per_cleaned_expression():
    from engine.flowrvs import FlowRVSPipeline
    a = assets()
    pipe = FlowRVSPipeline.from_official(a.wan, a.files["dit16_model"], a.files["vae_model"],
                                         device="cpu", max_size=MAX_SIZE)
    calls = []
    pipe.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    frames = video(5, seed=11)
    pipe(frames, "the dog")
    pipe(frames, "  the   dog ")
    pipe(frames[:1], "the dog")
    assert len(calls) == 1
    pipe(frames, "the cat")
    assert len(calls) == 2 and len(pipe.prompt_cache) == 2
    embeds = pipe.encode_prompt("the dog")
    assert embeds.shape == (1, 256, 32)
    assert torch.count_nonzero(embeds[0, 3:]) == 0     # "the dog </s>" then zeros


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("frames,expression,kwargs,message", [
    (np.zeros((4, 30, 40), np.uint8), "dog", {}, r"shape \[T,H,W,3\].*image\[None\]"),
    (np.zeros((4, 30, 40, 3), np.float32), "dog", {}, "uint8.*255"),
    (np.zeros((0, 30, 40, 3), np.uint8), "dog", {}, "at least one"),
    (np.zeros((2, 30, 40, 3), np.uint8), "  ", {}, "non-empty string"),
    (np.zeros((2, 30, 40, 3), np.uint8), None, {}, "non-empty string"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"schedule": "cosine"}, "'official'.*'mevis'"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"num_steps": 4}, "schedule='linear'"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"num_steps": 0, "schedule": "linear"},
     "positive integer"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"window": 8}, "4k\\+1"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"window": 9, "overlap": 9}, "0 to window-1"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"return_probs": "yes"}, "True or False"),
    (np.zeros((2, 30, 40, 3), np.uint8), "dog", {"progress": 3}, "progress"),
    (np.zeros((2, 2, 900, 3), np.uint8), "dog", {}, "too elongated.*between 1:2 and 3:1"),
])
def test_input_validation_teaches(frames, expression, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipeline("dit16_model")(frames, expression, **kwargs)


# ----------------------------------------------------------------------------- segmenter

def test_segmenter_adapter_and_engine_service():
    import engine
    from engine.flowrvs import FlowRVSSegmenter, load
    a = assets()
    seg = load(device="cpu", wan_dir=str(a.wan), dit_checkpoint=str(a.files["dit16_model"]),
               vae_checkpoint=str(a.files["vae_model"]))
    assert isinstance(seg, FlowRVSSegmenter)
    seg.pipeline.config.max_height, seg.pipeline.config.max_width = MAX_SIZE
    frames = video(5, seed=12)
    masks = seg.segment_video(frames, "the dog")
    assert masks.shape == (5, 40, 60) and masks.dtype == np.bool_
    image = seg.segment_image(frames[0], "the dog")
    assert image.shape == (40, 60) and image.dtype == np.bool_
    assert np.array_equal(image, seg.pipeline(frames[:1], "the dog")[0])

    engine.register_engine("flowrvs-test", lambda device=None, **paths: seg)
    try:
        service = engine.EngineService(device="cpu")
        out = service.segment_video("flowrvs-test", frames, "the dog")
        assert np.array_equal(out, masks)
        service.cancel()   # a cancel before the call is cleared by the call itself
        assert service.segment_image("flowrvs-test", frames[0], "the dog").shape == (40, 60)
    finally:
        engine.unregister_engine("flowrvs-test")


def test_load_without_paths_names_flags_and_env_vars(monkeypatch, tmp_path):
    from engine.flowrvs import FlowRVSNotConfigured, load
    for env in ("FLOWLABEL_FLOWRVS_WAN_DIR", "FLOWLABEL_FLOWRVS_CHECKPOINT",
                "FLOWLABEL_FLOWRVS_VAE", "FLOWLABEL_FLOWRVS_MODEL_DIR"):
        monkeypatch.delenv(env, raising=False)
    with pytest.raises(FlowRVSNotConfigured) as err:
        load(device="cpu")
    msg = str(err.value)
    for needle in ("wan_dir", "dit_checkpoint", "--flowrvs-wan-dir", "FLOWLABEL_FLOWRVS_WAN_DIR",
                   "--flowrvs-checkpoint", "FLOWLABEL_FLOWRVS_CHECKPOINT", "--flowrvs-vae",
                   "FLOWLABEL_FLOWRVS_VAE"):
        assert needle in msg
    with pytest.raises(FlowRVSNotConfigured, match="dit_checkpoint") as err:
        load(device="cpu", wan_dir=str(tmp_path))
    assert "missing dit_checkpoint" in str(err.value) and "missing wan_dir" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.pth.*--flowrvs-checkpoint"):
        load(device="cpu", wan_dir=str(tmp_path), dit_checkpoint=str(tmp_path / "nope.pth"))


def test_load_reads_the_environment(monkeypatch, tmp_path):
    from engine.flowrvs import load
    a = assets()
    pipeline("dit16_model").save_pretrained(tmp_path / "saved")
    monkeypatch.setenv("FLOWLABEL_FLOWRVS_MODEL_DIR", str(tmp_path / "saved"))
    seg = load(device="cpu")
    assert seg.pipeline.config.max_height == MAX_SIZE[0]
    monkeypatch.delenv("FLOWLABEL_FLOWRVS_MODEL_DIR")
    monkeypatch.setenv("FLOWLABEL_FLOWRVS_WAN_DIR", str(a.hf_entry))
    monkeypatch.setenv("FLOWLABEL_FLOWRVS_CHECKPOINT", str(a.files["dit32_ema"]))
    monkeypatch.setenv("FLOWLABEL_FLOWRVS_VAE", str(a.files["vae_bare"]))
    seg = load(device="cpu", num_steps=4, schedule="mevis")
    assert seg.pipeline.config.in_channels == 32 and seg.num_steps == 4


def test_importing_the_engine_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, engine.flowrvs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bfloat16_runs_and_stays_close_to_float32():
    from engine.flowrvs import FlowRVSPipeline
    a = assets()
    pipe = FlowRVSPipeline.from_official(a.wan, a.files["dit16_model"], a.files["vae_model"],
                                         device="cpu", dtype="bfloat16", max_size=MAX_SIZE)
    assert pipe.dtype == pipe.vae.dtype == pipe.text_encoder.dtype == torch.bfloat16
    frames = video(5, seed=13)
    low = pipe(frames, "the dog", return_probs=True)
    full = pipeline("dit16_model")(frames, "the dog", return_probs=True)
    assert low.dtype == np.float32 and np.abs(low - full).max() < 0.05
    assert ((low > 0.5) == (full > 0.5)).mean() > 0.95


def test_checkpoint_flags_take_a_cached_repo_id_or_folder(monkeypatch, tmp_path):
    """--flowrvs-checkpoint / --flowrvs-vae accept the release's repo id once it is in the cache
    (its FlowRVS_dit_mevis.pth and tuned_vae.pth), the same as the files themselves."""
    import shutil

    from engine.flowrvs import load
    from engine.flowrvs.segmenter import RELEASE_FILES
    from tests.helpers.hf_cache import write_hf_cache_entry
    a = assets()
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(a.files["dit16_model"], release / RELEASE_FILES["dit"])
    shutil.copy(a.files["vae_model"], release / RELEASE_FILES["vae"])
    write_hf_cache_entry(tmp_path / "hub", "xmz111/FlowRVS", release, "0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    by_repo = load(device="cpu", wan_dir=str(a.wan), dit_checkpoint="xmz111/FlowRVS", vae_checkpoint="xmz111/FlowRVS")
    by_file = load(device="cpu", wan_dir=str(a.wan), dit_checkpoint=str(a.files["dit16_model"]),
                   vae_checkpoint=str(a.files["vae_model"]))
    for part in ("transformer", "vae"):
        got, want = (getattr(s.pipeline, part).state_dict() for s in (by_repo, by_file))
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    by_folder = load(device="cpu", wan_dir=str(a.wan), dit_checkpoint=str(release), vae_checkpoint=str(release))
    assert by_folder.pipeline.config.in_channels == 16
    with pytest.raises(FileNotFoundError, match="models download.*--flowrvs-checkpoint"):
        load(device="cpu", wan_dir=str(a.wan), dit_checkpoint="Nobody/not-cached")
