"""Regenerate the demo media in assets/demo/ (deterministic): a short clip and a still.

    python scripts/make_demo_media.py
"""
import json
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "assets" / "demo"


def background(h, w, rng):
    base = np.linspace(60, 140, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    return np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def draw_clip_shapes(img, t, colours=((40, 40, 220), (220, 120, 30), (60, 200, 60))):
    """Frame t's shapes, in the manifest's order, each in its colour (BGR, as OpenCV writes); with
    colours 1, 2, 3 on a zero image it gives the shapes' true masks (scripts/make_demo_gif.py)."""
    cv2.rectangle(img, (20 + 8 * t, 60), (70 + 8 * t, 110), colours[0], -1)             # red square, moving right
    cv2.circle(img, (280 - 6 * t, 170), 28, colours[1], -1)                             # blue circle, moving left
    cv2.circle(img, (160, 40 + 2 * t), 14, colours[2], -1)                              # small green circle, moving down
    return img


def clip(path, frames=24, size=(320, 240)):
    w, h = size
    rng = np.random.default_rng(7)
    bg = background(h, w, rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (w, h))
    for t in range(frames):
        writer.write(draw_clip_shapes(bg.copy(), t))
    writer.release()


def still(path, size=(320, 240)):
    w, h = size
    img = background(h, w, np.random.default_rng(11))
    cv2.rectangle(img, (30, 40), (110, 120), (40, 40, 220), -1)
    cv2.rectangle(img, (200, 140), (240, 180), (40, 40, 220), -1)
    pts = np.array([[160, 30], [120, 100], [200, 100]], np.int32)
    cv2.fillPoly(img, [pts], (220, 120, 30))
    cv2.imwrite(str(path), img)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    clip(OUT / "shapes.mp4")
    still(OUT / "shapes.png")
    manifest = [
        {"file": "shapes.mp4", "expressions": ["the red square moving right", "the blue circle moving left",
                                               "the small green circle"]},
        {"file": "shapes.png", "expressions": ["the larger red square", "the blue triangle"]},
    ]
    (OUT / "demo.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print("wrote", *sorted(p.name for p in OUT.iterdir()))
