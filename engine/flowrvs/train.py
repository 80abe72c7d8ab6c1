"""Train or fine-tune FlowRVS on MeViS-format data: `python -m engine.flowrvs.train`.

Data: the layout the studio exports (app/formats/mevis.py): JPEGImages/<vid>/<frame>.jpg,
meta_expressions.json and mask_dict.json; the target of an expression is the union of its
objects' masks. Each sample is one expression on a clip of --num-frames (4k+1) consecutive
frames, resized with the inference rule (frames.py) into the --size box.

Two stages (--stage):

- `flow` (the release's training, flowrvs-release.md "Training"): the text encoder and the VAE
  encoder are frozen (the text encoder is trained too with --train-text-encoder, which the
  tiny demo needs because no pretrained tiny UMT5 exists). For a batch:
      x0 = normalise(vae.encode(video).latent_dist.sample())   (SPA: sampling + jitter)
      x1 = vae.encode(2 * mask - 1, as 3 channels).latent_dist.mean      (raw, not normalised)
      timestep: Boundary-Biased Sampling (a fraction p of the batch at 1000, the rest
                clamp(floor(u * 1000), 1, 1000), u ~ U(0, 1), shuffled); t = timestep / 1000
      x_t = t * x0 + (1 - t) * x1;  target u = x0 - x1;  loss = MSE(DiT([x_t, x0]), u)
  ([x_t, x0] on channels with DVI, x_t alone without). AdamW, gradient clipping, EMA (fp32
  shadow), optional gradient checkpointing, bf16 autocast on CUDA.
- `vae`: the mask VAE. With official weights (--wan-dir) it does what the release did: the
  encoder stays frozen and the decoder, its conv_out replaced by a 1-channel conv (96 -> 1,
  initialised from the mean of the 3 RGB rows), learns to decode mask latents to 2*mask-1.
  From a tiny config (--tiny) nothing pretrained exists, so the whole VAE is trained from
  scratch with a 4-channel head (RGB + mask): frames are reconstructed on channels 0-2 (so
  frame latents keep colour and shape) and masks on channel 3; the saved VAE keeps only the
  mask row of conv_out (1 channel, the tuned_vae layout). latents_mean/std are then measured
  on the training frames and written into the VAE config.

Checkpoints (<out>/checkpoint.pt, every --save-every steps and at the end) hold the model(s),
the EMA, the optimizer, the step and every RNG state; --resume continues exactly where a run
stopped (the same batches, timesteps and noise). At the end <out>/pipeline/ is a
FlowRVSPipeline.save_pretrained folder (EMA weights unless --no-ema-export).

    python -m engine.flowrvs.train --data DIR --tiny --stage vae  --out runs/a --max-steps 2000
    python -m engine.flowrvs.train --data DIR --tiny --stage flow --vae-from runs/a/pipeline \
        --out runs/b --max-steps 4000
    python -m engine.flowrvs.train --data DIR --tiny --stage vae --vae-from runs/a/pipeline \
        --no-train-vae-encoder --out runs/c      # decoder-only tuning (encoder frozen)
    python -m engine.flowrvs.train --data DIR --wan-dir Wan2.1-T2V-1.3B-Diffusers \
        --dit-checkpoint FlowRVS_dit_mevis.pth --vae-checkpoint tuned_vae.pth --out runs/ft
"""
from __future__ import annotations

import argparse
import logging
import sys

from .trainer import STAGES, TrainConfig, run


def parser() -> argparse.ArgumentParser:
    """The CLI. Every dest is a TrainConfig field; the defaults live in TrainConfig only (an
    option not given stays out of the namespace), so a new option is one field + one line."""
    p = argparse.ArgumentParser(prog="python -m engine.flowrvs.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--data", required=True, help="MeViS-format folder")
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, pipeline/)")
    p.add_argument("--stage", choices=STAGES)
    src = p.add_argument_group("weights")
    src.add_argument("--tiny", action="store_true", help="random tiny config (the demo sizes)")
    src.add_argument("--wan-dir", help="Wan2.1-T2V-1.3B-Diffusers folder (official weights)")
    src.add_argument("--dit-checkpoint", help="FlowRVS DiT .pth to start from")
    src.add_argument("--vae-checkpoint", help="tuned_vae.pth")
    src.add_argument("--vae-from", help="save_pretrained folder whose VAE to use (flow stage "
                                        "after the tiny VAE stage)")
    src.add_argument("--resume-from-pipeline", help="save_pretrained folder to fine-tune")
    tr = p.add_argument_group("training")
    tr.add_argument("--max-steps", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--weight-decay", type=float)
    tr.add_argument("--grad-clip", type=float)
    tr.add_argument("--ema-decay", type=float, help="0 disables the EMA")
    tr.add_argument("--bbs-p", type=float, help="Boundary-Biased Sampling share")
    tr.add_argument("--timestep-bias", type=float,
                    help="lean the non-boundary timesteps toward t=1000, the start of the flow "
                         "(density ~ t**bias; 0 = the release's uniform)")
    tr.add_argument("--time-limit", type=float, metavar="SECONDS",
                    help="stop (and export) after the first step past this many seconds since "
                         "the run started (loading and latent encoding included)")
    tr.add_argument("--no-spa-sample", action="store_true",
                    help="SPA off part 1: x0 from the latent mean, not a sample")
    tr.add_argument("--spa-norm-jitter", type=float,
                    help="SPA normalisation perturbation (0 = off)")
    tr.add_argument("--dvi", action=argparse.BooleanOptionalAction,
                    help="Direct Video Injection (32 input channels)")
    tr.add_argument("--train-text-encoder", action=argparse.BooleanOptionalAction,
                    help="default: on with --tiny, off otherwise (the release freezes it)")
    tr.add_argument("--train-vae-encoder", action=argparse.BooleanOptionalAction,
                    help="vae stage: default on with --tiny, off otherwise (the release)")
    tr.add_argument("--mask-weight", type=float)
    tr.add_argument("--mask-fg-weight", type=float,
                    help="weight of foreground pixels in the mask loss")
    tr.add_argument("--kl-weight", type=float)
    tr.add_argument("--demo-world-vocabulary", action="store_true",
                    help="tiny tokenizer: add engine.demo_world.VOCABULARY to the data's words")
    tr.add_argument("--hflip", action="store_true", help="flip clips, swapping left/right")
    tr.add_argument("--gradient-checkpointing", action="store_true")
    tr.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                    help="bf16 autocast on CUDA")
    tr.add_argument("--num-frames", type=int)
    tr.add_argument("--max-videos", type=int, help="use the first N videos")
    tr.add_argument("--size", type=int, nargs=2, metavar=("H", "W"))
    tr.add_argument("--max-height", type=int)
    tr.add_argument("--max-width", type=int)
    tr.add_argument("--text-length", type=int,
                    help="text tokens (default 16 with --tiny, 256 otherwise)")
    tr.add_argument("--cache-latents", action=argparse.BooleanOptionalAction)
    tr.add_argument("--precompute-latents", action="store_true",
                    help="flow stage: encode every clip (from frame 0) before training")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--device")
    tr.add_argument("--threads", type=int, help="torch.set_num_threads")
    tr.add_argument("--save-every", type=int)
    tr.add_argument("--log-every", type=int)
    tr.add_argument("--resume", nargs="?", const="auto",
                    help="continue from <out>/checkpoint.pt (or the given file)")
    tr.add_argument("--no-ema-export", action="store_true")
    return p


def parse_args(argv=None) -> TrainConfig:
    return TrainConfig(**vars(parser().parse_args(argv)))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
