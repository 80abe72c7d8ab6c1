"""python -m engine.demo_world {video,image} --seed S --count N --out DIR [...]"""
from __future__ import annotations

import argparse
import sys

from engine.demo_world.datasets import write_image_dataset, write_video_dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo_world",
                                     description="Write a synthetic referring-segmentation dataset.")
    sub = parser.add_subparsers(dest="kind", required=True)
    video = sub.add_parser("video", help="clips in MeViS layout (JPEGImages, meta_expressions.json, mask_dict.json)")
    image = sub.add_parser("image", help="images in RefCOCO layout (images, instances.json, refs(unc).p, refs.json)")
    for p in (video, image):
        p.add_argument("--seed", type=int, required=True, help="the world; the same seed gives the same bytes")
        p.add_argument("--count", type=int, required=True, help="how many clips / images")
        p.add_argument("--out", required=True, help="a new (or empty) folder")
        p.add_argument("--size", type=int, default=64, help="frame side in pixels (default 64)")
        p.add_argument("--jpeg-quality", type=int, default=95)
    video.add_argument("--frames", type=int, default=9, help="frames per clip (default 9; 4k+1 suits FlowRVS)")
    image.add_argument("--split", default="train", help="the refs' split (default train)")
    args = parser.parse_args(argv)
    try:
        if args.kind == "video":
            summary = write_video_dataset(args.out, args.seed, args.count, frames=args.frames, size=args.size,
                                          jpeg_quality=args.jpeg_quality)
            what = f"{summary['videos']} videos of {args.frames} frames"
        else:
            summary = write_image_dataset(args.out, args.seed, args.count, size=args.size, split=args.split,
                                          jpeg_quality=args.jpeg_quality)
            what = f"{summary['images']} images, {summary['refs']} refs"
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kinds = ", ".join(f"{k} {v}" for k, v in summary["kinds"].items())
    print(f"wrote {what}, {summary['expressions']} expressions ({kinds}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
