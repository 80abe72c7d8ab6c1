#!/usr/bin/env python3
"""Script a running FlowLabel studio with gradio_client: add media, add an expression, save a mask,
read it back, export COCO. Usage: python scripts/api_example.py http://127.0.0.1:7860/ assets/demo/shapes.png
"""
import argparse
import json
import ssl
import tempfile
from pathlib import Path

import cv2
import numpy as np
from gradio_client import Client, handle_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="address of a running studio, e.g. http://127.0.0.1:7860/")
    parser.add_argument("media", type=Path, help="an image or video to add to its project")
    args = parser.parse_args()
    # gradio_client stages every download in a new folder of the temp dir (left there, empty)
    # and keeps the file under download_files: point both at one folder that goes at the end.
    with tempfile.TemporaryDirectory(prefix="flowlabel-api-") as scratch:
        tempfile.tempdir = scratch
        try:
            run(args.url, args.media, Path(scratch))
        finally:
            tempfile.tempdir = None


def run(url: str, media_path: Path, scratch: Path) -> None:
    # One TLS context for every request: gradio_client otherwise builds one per HTTP request (CA
    # bundle loaded each time, even for http://), which is most of a call's time. Still verifies.
    client = Client(url, verbose=False, ssl_verify=ssl.create_default_context(), download_files=scratch)

    media = client.predict(file=handle_file(media_path), api_name="/add_media")
    w, h = media["width"], media["height"]
    print(f"media {media['media_id']}: {media['kind']}, {media['frames']} frame(s), {w}x{h}")
    expression_id = client.predict(media_id=media["media_id"], text="the object in the middle",
                                   api_name="/add_expression")["expression_id"]

    # A mask is a PNG of the frame's size; nonzero pixels are the object.
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
    png = scratch / "mask.png"
    cv2.imwrite(str(png), mask)
    revision = client.predict(expression_id=expression_id, frame=0, mask=handle_file(png),
                              api_name="/save_mask")["revision"]

    stored = cv2.imread(client.predict(expression_id=expression_id, frame=0, api_name="/get_mask"),
                        cv2.IMREAD_GRAYSCALE)
    if not np.array_equal(stored, mask):
        raise SystemExit("error: the mask read back differs from the one saved")
    print(f"expression {expression_id}: frame 0 saved at revision {revision}, read back identical")

    coco = json.loads(Path(client.predict(api_name="/export_coco")).read_text())
    print(f"COCO export: {len(coco['images'])} images, {len(coco['annotations'])} annotations, "
          f"{len(coco['refs'])} expressions")

if __name__ == "__main__":
    main()
