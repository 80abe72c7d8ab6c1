"""The project's own SAM input preparation against transformers' processors, built offline.

FlowLabel prepares inputs itself (engine/sam2/predictor.py, tracker.py, engine/sam3/segmenter.py), so a
click never pays for a processor call. Here Sam2Processor, Sam2VideoProcessor and Sam3Processor,
constructed with the checkpoints' settings (1024 px and ImageNet for SAM 2.1 and EdgeTAM, 1008 px
and 0.5/0.5 for SAM 3) or the tiny models' sizes, pin that preparation:

- Points, boxes, mask prompts and the masks brought back to the frame: equal.
- Pixels: within one grey level. The processors resize the uint8 image (on CPU with torch's native
  uint8 antialiased kernel, on a GPU in float then rounded), so their pixels are whole grey levels;
  the project resizes in float and does not round, as the original SAM 2 image predictor does
  (ToTensor, then Resize on the float tensor). Each pixel therefore differs by under one grey level
  (about 0.3 on average), no more than the processor's own CPU and GPU paths differ from each other.
- SAM 3's masks: the processor takes the sigmoid before upscaling, the project (like
  facebookresearch/sam3) after; they can disagree only on pixels whose bilinear neighbours hold
  logits of both signs, i.e. on a mask's edge.
"""
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.sam2.checkpoints import load_model, normalization
from engine.sam2.predictor import MEAN, STD, preprocess, scale_points, upscale
from engine.sam2.tracker import add_mask, add_prompts, new_session
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
H, W = 60, 80
ONE_GREY = 1.0 + 1e-4  # a whole grey level, and float32 rounding of the normalised values


def grey_levels(a: torch.Tensor, b: torch.Tensor, std) -> torch.Tensor:
    """|a - b| for normalised pixels [..., 3, h, w], in grey levels (0..255 units)."""
    return (a - b).abs() * torch.tensor(std).view(3, 1, 1) * 255


def uint8_resize(img: np.ndarray, size: int) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].float()


def sam2_processor(size: int = 1024):
    from transformers import Sam2ImageProcessor, Sam2Processor
    return Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": size, "width": size}))


def video_processor(folder=None):
    """Sam2VideoProcessor from the processor files saved beside the tiny weights."""
    from transformers import Sam2VideoProcessor
    return Sam2VideoProcessor.from_pretrained(folder or fx.model_dir())


# upscaled (the tiny model, a 480x270 clip at 1024) and downscaled (1080p at 1024)
@pytest.mark.parametrize("size, height, width", [(128, 60, 80), (1024, 270, 480), (1024, 1080, 1920)])
def test_sam2_pixels_are_within_one_grey_level_of_the_processor(size, height, width):
    img = fx.image(height, width, seed=size + height)
    theirs = sam2_processor(size)(images=img, return_tensors="pt")["pixel_values"][0]
    ours = preprocess(img, size)[0]
    diff = grey_levels(ours, theirs, STD)
    assert diff.max() <= ONE_GREY and diff.mean() < 0.35, (float(diff.max()), float(diff.mean()))
    # the whole difference is the processor's uint8 resize: normalising that gives its pixels
    mean = torch.tensor(MEAN).view(3, 1, 1)
    assert grey_levels((uint8_resize(img, size) / 255 - mean) / torch.tensor(STD).view(3, 1, 1), theirs,
                       STD).max() < 1e-3
    # and rounding ours (what the processor does on a GPU) moves it by as much again
    rounded = (F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(size, size),
                             mode="bilinear", antialias=True, align_corners=False)[0].round() / 255 - mean)
    assert 0 < grey_levels(rounded / torch.tensor(STD).view(3, 1, 1), theirs, STD).max() <= ONE_GREY


def test_points_and_boxes_scale_as_the_processor_scales_them():
    points, box = [[20.5, 30.25], [79.0, 0.0], [0.0, 59.0]], [3.0, 7.5, 61.0, 44.0]
    for size in (fx.SIZE, 1024):
        theirs = sam2_processor(size)(images=fx.image(H, W), input_points=[[points]], input_labels=[[[1, 0, 1]]],
                                      input_boxes=[[box]], return_tensors="pt")
        np.testing.assert_array_equal(scale_points(np.array(points), (H, W), size), theirs["input_points"][0, 0])
        corners = scale_points(np.array(box).reshape(2, 2), (H, W), size).reshape(4)
        np.testing.assert_array_equal(corners, theirs["input_boxes"][0, 0])


def test_masks_come_back_as_post_process_masks_brings_them():
    logits = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 8
    for shape in ((H, W), (270, 480), (17, 9)):
        theirs = sam2_processor().post_process_masks([logits.clone()], [shape], binarize=False)[0]
        assert torch.equal(upscale(logits, shape), theirs)
        binary = sam2_processor().post_process_masks([logits.clone()], [shape])[0]
        assert torch.equal(upscale(logits, shape) > 0, binary) and 0 < binary.float().mean() < 1


def sessions(frames, folder=None):
    """The tracker's streaming session and Sam2VideoProcessor's, on the same clip."""
    folder = folder or fx.model_dir()
    model = load_model(folder, video=True)
    ours = new_session(model, lambda i: frames[i], len(frames), frames.shape[1:3], normalization(folder))
    theirs = video_processor(folder).init_video_session(video=list(frames), dtype=torch.float32)
    return ours, theirs


@pytest.mark.parametrize("mean, std", [(MEAN, STD), ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
def test_video_frames_are_within_one_grey_level_of_the_video_processor(tmp_path, mean, std):
    """Also with a checkpoint whose saved processor normalises otherwise: the engine reads it."""
    folder = tmp_path / "weights"
    shutil.copytree(fx.model_dir("edgetam"), folder)
    fx.save_processor(folder, fx.SIZE, mean, std)
    assert normalization(folder) == (mean, std)
    frames = fx.clip(3, H, W)
    ours, theirs = sessions(frames, folder)
    for i in range(3):
        diff = grey_levels(ours.get_frame(i), theirs.get_frame(i), std)
        assert diff.max() <= ONE_GREY and diff.mean() < 0.35, (i, float(diff.max()), float(diff.mean()))


def test_video_prompts_and_masks_enter_the_session_as_the_video_processor_puts_them():
    frames = fx.clip(3, H, W)
    ours, theirs = sessions(frames)
    points, box = [(14.0, 12.5, 1), (40.0, 30.0, 0)], (5.0, 4.0, 50.5, 33.0)
    add_prompts(ours, 0, points, box, (H, W), fx.SIZE)
    video_processor().add_inputs_to_inference_session(theirs, frame_idx=0, obj_ids=1,
                                                      input_points=[[[list(p[:2]) for p in points]]],
                                                      input_labels=[[[p[2] for p in points]]], input_boxes=[[list(box)]])
    got, want = ours.point_inputs_per_obj[0][0], theirs.point_inputs_per_obj[0][0]
    assert torch.equal(got["point_coords"], want["point_coords"])
    assert torch.equal(got["point_labels"], want["point_labels"].to(got["point_labels"].dtype))
    mask = np.zeros((H, W), bool)
    mask[10:41, 7:33] = True
    add_mask(ours, 2, mask, fx.SIZE)
    video_processor().add_inputs_to_inference_session(theirs, frame_idx=2, obj_ids=1, input_masks=mask)
    assert torch.equal(ours.mask_inputs_per_obj[0][2], theirs.mask_inputs_per_obj[0][2])
    assert ours.mask_inputs_per_obj[0][2].sum() > 0


# -- SAM 3 --------------------------------------------------------------------------------------
def sam3_processor(folder, size: int):
    from transformers import AutoTokenizer, Sam3ImageProcessor, Sam3Processor
    return Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": size, "width": size}),
                         tokenizer=AutoTokenizer.from_pretrained(folder))


def test_sam3_text_and_pixels_match_the_processor():
    from engine.sam3 import load
    from tests.engine.test_sam3_concept import model_dir
    segmenter = load(model=str(model_dir()))
    img = fx.image(H, W, seed=7)
    for size in (segmenter.size, 1008):
        theirs = sam3_processor(model_dir(), size)(images=img, text="the red ball on the left", return_tensors="pt")
        ours = preprocess(img, size, mean=segmenter.normalization[0], std=segmenter.normalization[1])
        diff = grey_levels(ours[0], theirs["pixel_values"][0], segmenter.normalization[1])
        assert diff.max() <= ONE_GREY and diff.mean() < 0.35, (size, float(diff.max()), float(diff.mean()))
    for text in ("the red ball on the left", "cat", "a blue car of the dog"):
        theirs = sam3_processor(model_dir(), 112)(text=text, return_tensors="pt")
        tokens = segmenter.tokenizer([text], padding="max_length", max_length=32, truncation=True, return_tensors="pt")
        assert torch.equal(tokens["input_ids"], theirs["input_ids"]), text
        assert torch.equal(tokens["attention_mask"], theirs["attention_mask"]), text


def test_sam3_instances_match_post_process_instance_segmentation_but_on_edges():
    """Sharp synthetic outputs (the tiny model's logits are too flat to show the edge)."""
    from transformers.models.sam3.modeling_sam3 import Sam3ImageSegmentationOutput

    from engine.sam3.segmenter import postprocess
    from tests.engine.test_sam3_concept import model_dir
    g = torch.Generator().manual_seed(3)
    blobs = F.interpolate(torch.randn(1, 5, 6, 6, generator=g), size=(32, 32), mode="bicubic", align_corners=False)
    out = Sam3ImageSegmentationOutput(pred_logits=torch.randn(1, 5, generator=g) * 3,
                                      pred_boxes=torch.rand(1, 5, 4, generator=g).sort(-1).values,
                                      pred_masks=blobs * 20, presence_logits=torch.randn(1, 1, generator=g))
    ours = postprocess(out, H, W)
    found = sam3_processor(model_dir(), 112).post_process_instance_segmentation(
        out, threshold=0.0, mask_threshold=0.5, target_sizes=[(H, W)])[0]
    order = np.argsort(-found["scores"].numpy(), kind="stable")
    np.testing.assert_allclose(ours.scores, found["scores"].numpy()[order], rtol=1e-6)
    np.testing.assert_allclose(ours.boxes, found["boxes"].numpy()[order], rtol=1e-6)
    theirs = found["masks"].numpy()[order].astype(bool)
    sorted_logits = out.pred_masks[0][torch.from_numpy(order.copy())]
    positive = F.interpolate((sorted_logits > 0).float()[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    edge = ((positive > 1e-6) & (positive < 1 - 1e-6)).numpy()  # neighbours of both signs
    differ = ours.masks != theirs
    assert not (differ & ~edge).any()
    assert differ.sum() <= 0.25 * edge.sum(), (int(differ.sum()), int(edge.sum()))
    assert ours.masks.any() and not ours.masks.all()
