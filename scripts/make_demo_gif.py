"""Make docs/demo.gif with the studio's own render: the demo clip, all three expressions, the shipped
flowrvs-demo engine's proposals beside the corrected masks (here the clip's true shapes, saved as
an annotator's correction would be).

    python -m scripts.make_demo_gif [--out docs/demo.gif]   # from the checkout root

Runs the engine on CPU (a minute or two on two cores); everything else happens in a temporary project.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from app.cli import seed_demo
from app.studio import Studio
from scripts.make_demo_media import draw_clip_shapes

ENGINE = "flowrvs-demo"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.gif")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flowlabel-demo-gif-") as tmp:
        studio = Studio(Path(tmp) / "demo.sqlite", device="cpu")
        seed_demo(studio)
        video = next(m for m in studio.store.list_media() if m["kind"] == "video")
        expressions = studio.store.list_expressions(video["id"])  # the manifest's order: the shapes' order
        for k, expr in enumerate(expressions):
            studio.segment(expr["id"], ENGINE)
            truth = {}
            for t in range(video["frames"]):
                labels = draw_clip_shapes(np.zeros((video["height"], video["width"]), np.uint8), t, (1, 2, 3))
                truth[t] = labels == k + 1
            studio.store.save_masks(expr["id"], truth, action="the demo's true shapes")
            print(f"{expr['text']}: {ENGINE} proposal and the true masks saved", flush=True)
        result = studio.render_clip(args.out, media_id=video["id"], compare=[ENGINE, "mask"], fmt="gif")
        studio.close()
    print(f"wrote {result['path']}: {result['frames']} frames {result['width']}x{result['height']} at "
          f"{result['fps']:g} fps, {args.out.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
