"""Text encoding as the FlowRVS release does it, plus a small per-expression cache.

Release facts (flowrvs-release.md, "Text"):
- cleaning: collapse whitespace (and strip), html-unescape once, drop `"` and `\\`;
- tokenize with padding="max_length", truncation, special tokens; the attention mask goes to
  the UMT5 encoder only;
- take last_hidden_state, keep the first seq_len rows (the real tokens), zero-pad to
  max_sequence_length. No attention mask reaches the DiT, so the padding length is part of
  the model: it must match training (256 for Gen2, 64 for Gen1).
"""
from __future__ import annotations

import html
import threading
from collections import OrderedDict
from typing import Optional

try:  # the release uses the `regex` package; for these patterns `re` behaves the same
    import regex as re
except ImportError:  # pragma: no cover
    import re

import torch


def clean_prompt(text: str) -> str:
    """Whitespace collapsed and stripped, HTML entities unescaped, `"` and `\\` removed."""
    text = re.sub(r"\s+", " ", text).strip()
    text = html.unescape(text)
    text = re.sub(r'["\\]+', "", text)
    return text


@torch.no_grad()
def encode_prompt(tokenizer, text_encoder, prompt: str, max_sequence_length: int,
                  device=None, dtype=None) -> torch.Tensor:
    """One expression -> [1, max_sequence_length, d_model]: real-token rows, then zeros.

    `prompt` is the raw expression; it is cleaned here, once (cleaning is not idempotent:
    a second pass would collapse the spaces left where quotes were dropped).
    """
    cleaned = clean_prompt(prompt)
    inputs = tokenizer([cleaned], padding="max_length", max_length=max_sequence_length,
                       truncation=True, add_special_tokens=True, return_attention_mask=True,
                       return_tensors="pt")
    ids, mask = inputs.input_ids, inputs.attention_mask
    seq_len = int(mask.gt(0).sum(dim=1)[0])
    encoder_device = next(text_encoder.parameters()).device
    hidden = text_encoder(ids.to(encoder_device), mask.to(encoder_device)).last_hidden_state
    hidden = hidden[0, :seq_len]
    embeds = torch.cat([hidden, hidden.new_zeros(max_sequence_length - seq_len, hidden.size(1))])
    embeds = embeds[:max_sequence_length].unsqueeze(0)
    return embeds.to(device=device or encoder_device, dtype=dtype or hidden.dtype)


def encode_texts(tokenizer, text_encoder, prompts, max_sequence_length: int) -> torch.Tensor:
    """encode_prompt for training: a batch, and with gradients when the text encoder trains
    (the padding rows are zeroed by the attention mask instead of being cut off)."""
    inputs = tokenizer([clean_prompt(p) for p in prompts], padding="max_length",
                       max_length=max_sequence_length, truncation=True, add_special_tokens=True,
                       return_attention_mask=True, return_tensors="pt")
    device = next(text_encoder.parameters()).device
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
    hidden = text_encoder(ids, mask).last_hidden_state
    return hidden * mask.unsqueeze(-1).to(hidden.dtype)


class PromptCache:
    """A small LRU of prompt embeddings keyed by (cleaned text, sequence length), kept on CPU.

    Annotators run many clips with the same expression; re-encoding with the 11 GB UMT5 would
    dominate a one-step segmentation.
    """

    def __init__(self, maxsize: int = 32):
        self.maxsize = int(maxsize)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(prompt: str, max_sequence_length: int) -> tuple:
        return clean_prompt(prompt), int(max_sequence_length)

    def get(self, prompt: str, max_sequence_length: int) -> Optional[torch.Tensor]:
        k = self.key(prompt, max_sequence_length)
        with self._lock:
            value = self._items.get(k)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(k)
            self.hits += 1
            return value

    def put(self, prompt: str, max_sequence_length: int, embeds: torch.Tensor) -> None:
        if self.maxsize <= 0:
            return
        k = self.key(prompt, max_sequence_length)
        with self._lock:
            self._items[k] = embeds.detach().to("cpu")
            self._items.move_to_end(k)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
