#!/usr/bin/env python3
"""SAM 2.1 at its published sizes, random weights: image embedding time, click -> mask latency
once the image is embedded, and tracking frames/s on a 480p clip. Nothing is downloaded.

    python bench/sam2_sizes.py --size tiny --size large --json sam2.json    # on a GPU
    python bench/sam2_sizes.py --size test --device cpu --frames 3          # plumbing check

Measured with transformers' own classes (Sam2Model for images, Sam2VideoModel for tracking),
inputs prepared here (1024x1024, ImageNet mean/std) so no torchvision processor is needed. When
the project's SAM 2 engine (engine/sam2) exists, the report says so; its own bench measures the
engine's overheads on top of these figures.

Sizes (Hiera backbone configs of facebook/sam2.1-hiera-*):
  tiny   blocks [1,2,7,2],  dims 96-768,   global attention at 5, 7, 9
  large  blocks [2,6,36,4], dims 144-1152, global attention at 23, 33, 43
  test   a toy config (image 128) for CPU checks
Tracking: the object is seeded with a mask on frame 0, then propagated with SAM 2's memory;
frames/s = frames tracked / seconds, after one warm-up propagation.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.flowrvs import bench_clip
from bench.flowseg import device_name, timed

HIERA = {
    "tiny": dict(hidden_size=96, num_attention_heads=1, blocks_per_stage=[1, 2, 7, 2],
                 embed_dim_per_stage=[96, 192, 384, 768],
                 num_attention_heads_per_stage=[1, 2, 4, 8],
                 window_size_per_stage=[8, 4, 14, 7], global_attention_blocks=[5, 7, 9]),
    "large": dict(hidden_size=144, num_attention_heads=2, blocks_per_stage=[2, 6, 36, 4],
                  embed_dim_per_stage=[144, 288, 576, 1152],
                  num_attention_heads_per_stage=[2, 4, 8, 16],
                  window_size_per_stage=[8, 4, 16, 8], global_attention_blocks=[23, 33, 43]),
    "test": dict(hidden_size=12, num_attention_heads=1, blocks_per_stage=[1, 2, 7, 2],
                 embed_dim_per_stage=[12, 24, 48, 96], num_attention_heads_per_stage=[1, 2, 4, 8],
                 window_size_per_stage=[8, 4, 14, 7], global_attention_blocks=[5, 7, 9],
                 image_size=[128, 128]),
}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FRAME_SIZE = (480, 854)                 # 480p, 16:9


def configs(size: str):
    """(Sam2Config, Sam2VideoConfig) for a size."""
    from transformers import Sam2Config, Sam2VideoConfig
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig
    backbone = HIERA[size]
    dims = backbone["embed_dim_per_stage"]
    vision = dict(backbone_config=Sam2HieraDetConfig(**backbone).to_dict(),
                  backbone_channel_list=list(reversed(dims)))
    video = {}
    if size == "test":
        side = backbone["image_size"][0]
        vision.update(fpn_hidden_size=128, backbone_feature_sizes=[[side // 4] * 2,
                                                                   [side // 8] * 2,
                                                                   [side // 16] * 2])
        video = dict(image_size=side, memory_attention_hidden_size=128,
                     memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=128,
                     memory_attention_rope_feat_sizes=[side // 16] * 2,
                     memory_encoder_hidden_size=128, mask_downsampler_embed_dim=128,
                     memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=128,
                     prompt_encoder_config=dict(hidden_size=128, image_size=side),
                     mask_decoder_config=dict(hidden_size=128))
    image_cfg = Sam2Config(vision_config=Sam2VisionConfig(**vision).to_dict(),
                           **{k: v for k, v in video.items()
                              if k in ("prompt_encoder_config", "mask_decoder_config")})
    video_cfg = Sam2VideoConfig(vision_config=Sam2VisionConfig(**vision).to_dict(), **video)
    return image_cfg, video_cfg


def pixels(frames, side: int, device, dtype):
    """uint8 [T,H,W,3] -> [T,3,side,side], resized (bilinear) and ImageNet-normalised."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, device=device)[None, :, None, None]
    std = torch.tensor(STD, device=device)[None, :, None, None]
    return ((x - mean) / std).to(dtype)


def image_figures(model, one, side: int, args, sync) -> dict:
    """Embedding time and click latency (the embedding given) of a Sam2Model."""
    import torch
    h, w = FRAME_SIZE
    with torch.inference_mode():
        embed = timed(lambda: model.get_image_embeddings(one), args.runs, args.warmup, sync)
        embeddings = model.get_image_embeddings(one)
        point = torch.tensor([[[[0.3 * side, side / 3]]]], device=one.device)
        label = torch.tensor([[[1]]], device=one.device)
        click = timed(lambda: model(image_embeddings=embeddings, input_points=point,
                                    input_labels=label, multimask_output=True),
                      args.runs * 4, args.warmup, sync)
    return {"image_params": sum(p.numel() for p in model.parameters()),
            "embed_ms": statistics.median(embed) * 1e3,
            "click_ms": statistics.median(click) * 1e3,
            "click_p90_ms": sorted(click)[max(0, round(0.9 * len(click)) - 1)] * 1e3}


def tracking_figures(model, video, side: int, sync) -> dict:
    """Frames/s of a mask-seeded propagation through `video` (after one warm-up run)."""
    import torch
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession
    device, dtype = video.device, video.dtype
    seed = torch.zeros(1, 1, side, side, device=device)
    seed[..., side // 3 - side // 10:side // 3 + side // 10, side // 5:side // 3] = 1

    def track() -> int:
        session = Sam2VideoInferenceSession(
            video=video, video_height=FRAME_SIZE[0], video_width=FRAME_SIZE[1],
            inference_device=device, inference_state_device=device,
            video_storage_device=device, dtype=dtype)
        session.add_mask_inputs(session.obj_id_to_idx(1), 0, seed)
        session.obj_with_new_inputs = [1]
        model(inference_session=session, frame_idx=0)
        return sum(1 for _ in model.propagate_in_video_iterator(session, start_frame_idx=0))

    with torch.inference_mode():
        track()
        sync()
        t0 = time.perf_counter()
        tracked = track()
        sync()
        seconds = time.perf_counter() - t0
    return {"video_params": sum(p.numel() for p in model.parameters()),
            "tracked_frames": tracked, "track_s": seconds, "track_fps": tracked / seconds}


def measure(size: str, args) -> dict:
    import torch
    from transformers import Sam2Model, Sam2VideoModel

    from engine.torch_utils import as_dtype
    device, cuda = args.device, args.device.startswith("cuda")
    dtype = as_dtype(args.dtype, device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    image_cfg, video_cfg = configs(size)
    side = image_cfg.vision_config.backbone_config.image_size[0]
    clip = bench_clip(args.frames, *FRAME_SIZE)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    with torch.device(device):
        model = Sam2Model(image_cfg).eval().to(dtype)
    image = image_figures(model, pixels(clip[:1], side, device, dtype), side, args, sync)
    del model
    if cuda:
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    with torch.device(device):
        model = Sam2VideoModel(video_cfg).eval().to(dtype)
    tracking = tracking_figures(model, pixels(clip, side, device, dtype), side, sync)
    return {"size": size, "input_side": side, "dtype": str(dtype), **image, **tracking,
            "frame_size": list(FRAME_SIZE),
            "peak_mib": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", choices=tuple(HIERA),
                        help="repeatable; default tiny and large")
    parser.add_argument("--frames", type=int, default=60, help="480p frames to track")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--dtype", default=None, help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from engine.registry import pick_device
    args.device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    engine_present = (ROOT / "engine" / "sam2").is_dir()
    header = {"device": device_name(args.device), "torch": torch.__version__,
              "python": platform.python_version(), "engine_present": engine_present,
              "measured_with": "transformers Sam2Model / Sam2VideoModel, random weights"}
    print(f"device: {header['device']}; torch {header['torch']}; project engine/sam2 "
          f"{'present' if engine_present else 'not present'}; {header['measured_with']}")
    rows = []
    for size in args.size or ["tiny", "large"]:
        r = measure(size, args)
        rows.append(r)
        peak = f"{r['peak_mib']:,.0f} MiB" if r["peak_mib"] is not None else "-"
        print(f"[{size}] {r['image_params'] / 1e6:.1f}M parameters (video model "
              f"{r['video_params'] / 1e6:.1f}M), {r['dtype']}, input {r['input_side']}px: "
              f"embedding {r['embed_ms']:.1f} ms, click {r['click_ms']:.1f} ms (p90 "
              f"{r['click_p90_ms']:.1f}), tracking {r['track_fps']:.1f} frames/s over "
              f"{r['tracked_frames']} {FRAME_SIZE[0]}p frames; peak {peak}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({**header, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
