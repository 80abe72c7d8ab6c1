"""MeViS-format data for FlowRVS training and evaluation (what the studio's MeViS export writes).

    folder/JPEGImages/<vid>/<frame>.jpg
    folder/meta_expressions.json   {"videos": {vid: {"frames": [...], "expressions": {eid:
                                    {"exp": text, "anno_id": [...]}}}}}
    folder/mask_dict.json          {anno_id: [COCO RLE or null per frame]}

The target of an expression is the union of its objects' masks. Clips are decoded on demand
and kept in memory. Also here: the word-level tokenizer the tiny models train with.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def decode_rle(rle: dict) -> np.ndarray:
    """bool [H, W] of a COCO RLE (compressed str/bytes counts, or uncompressed list counts)."""
    from pycocotools import mask as mask_utils
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(counts, str):
        rle = {"size": rle["size"], "counts": counts.encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


@dataclass
class Sample:
    vid: str
    eid: str
    expression: str
    anno_ids: tuple


class MevisData:
    """Expressions of a MeViS-format folder.

    clip(i, start, flip) -> (frames uint8 [T,H,W,3], target bool [T,H,W], expression).
    """

    def __init__(self, root, num_frames: int = 5, max_videos: Optional[int] = None):
        from PIL import Image  # noqa: F401  (fail early if Pillow is missing)
        self.root = Path(root)
        meta_path = self.root / "meta_expressions.json"
        dict_path = self.root / "mask_dict.json"
        for p in (meta_path, dict_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: --data must be a MeViS-format folder "
                                        "(JPEGImages/, meta_expressions.json, mask_dict.json), "
                                        "as the studio's MeViS export writes")
        if num_frames < 1 or (num_frames - 1) % 4:
            raise ValueError(f"num_frames must be 4k+1 (1, 5, 9, 17, ...), got {num_frames}")
        self.num_frames = num_frames
        self.videos = json.loads(meta_path.read_text())["videos"]
        self.mask_dict = json.loads(dict_path.read_text())
        self.samples: list[Sample] = []
        if max_videos is not None:
            self.videos = {v: self.videos[v] for v in sorted(self.videos)[:max_videos]}
        for vid in sorted(self.videos):
            for eid, e in sorted(self.videos[vid]["expressions"].items(), key=lambda kv: kv[0]):
                anno = tuple(str(a) for a in e.get("anno_id", []))
                if not anno:
                    continue
                self.samples.append(Sample(vid, eid, str(e["exp"]).lower(), anno))
        if not self.samples:
            raise ValueError(f"{meta_path} holds no expression with objects")
        self._frames: dict = {}

    def __len__(self) -> int:
        return len(self.samples)

    def vocabulary(self) -> list[str]:
        words = set()
        for s in self.samples:
            words.update(split_words(s.expression))
        return sorted(words)

    def num_video_frames(self, vid: str) -> int:
        return len(self.videos[vid]["frames"])

    def video(self, vid: str) -> np.ndarray:
        if vid not in self._frames:
            from PIL import Image
            folder = self.root / "JPEGImages" / vid
            self._frames[vid] = np.stack([
                np.asarray(Image.open(folder / f"{name}.jpg").convert("RGB"))
                for name in self.videos[vid]["frames"]])
        return self._frames[vid]

    def target(self, sample: Sample, shape) -> np.ndarray:
        out = np.zeros(shape, bool)
        for a in sample.anno_ids:
            for f, rle in enumerate(self.mask_dict.get(a, [])):
                if rle is not None and f < shape[0]:
                    out[f] |= decode_rle(rle)
        return out

    def clip(self, index: int, start: int = 0, flip: bool = False):
        s = self.samples[index]
        video = self.video(s.vid)
        mask = self.target(s, video.shape[:3])
        frames, target = video[start:start + self.num_frames], mask[start:start + self.num_frames]
        if len(frames) < self.num_frames:  # short video: repeat the last frame
            extra = self.num_frames - len(frames)
            frames = np.concatenate([frames, np.repeat(frames[-1:], extra, 0)])
            target = np.concatenate([target, np.repeat(target[-1:], extra, 0)])
        expression = s.expression
        if flip:  # the release's horizontal flip, swapping left and right in the caption
            frames, target = frames[:, :, ::-1], target[:, :, ::-1]
            expression = swap_left_right(expression)
        return np.ascontiguousarray(frames), np.ascontiguousarray(target), expression


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, as the word-level tokenizer splits them."""
    return re.findall(r"\w+|[^\w\s]", text.lower())


def swap_left_right(text: str) -> str:
    return re.sub(r"\b(left|right)\b", lambda m: "right" if m.group(1) == "left" else "left", text)


def build_tokenizer(words):
    """A word-level tokenizer over `words` (tokenizers library), as a PreTrainedTokenizerFast:
    lower-cased, split on whitespace and punctuation, `</s>` appended like T5's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in sorted(set(words)):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)
