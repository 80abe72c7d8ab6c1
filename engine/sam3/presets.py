"""A seeded random SAM 3 (Sam3Model at toy sizes, 0.8M parameters) with a word-level tokenizer, saved in
the hub layout: for tests; nothing downloaded."""
from __future__ import annotations

from pathlib import Path

import torch

from engine.sam2.presets import sam3_vision

WORDS = ["the", "a", "dog", "cat", "red", "blue", "ball", "car", "left", "right", "on", "of"]
TINY = dict(
    vision_config=sam3_vision(64),
    text_config=dict(model_type="clip_text_model", vocab_size=len(WORDS) + 4, hidden_size=32, intermediate_size=64,
                     projection_dim=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                     pad_token_id=0, bos_token_id=2, eos_token_id=3),
    geometry_encoder_config=dict(hidden_size=64, num_layers=1, num_attention_heads=2, intermediate_size=128),
    detr_encoder_config=dict(hidden_size=64, num_layers=1, num_attention_heads=2, intermediate_size=128),
    detr_decoder_config=dict(hidden_size=64, num_layers=1, num_queries=5, num_attention_heads=2, intermediate_size=128),
    mask_decoder_config=dict(hidden_size=64, num_attention_heads=2))


def make_tokenizer():
    """Word-level, with <pad>=0 <unk>=1 <bos>=2 <eos>=3 and CLIP's bos ... eos framing."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 2),
                                                                                                 ("<eos>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>")


def write_model_dir(root: Path, seed: int = 0) -> Path:
    from transformers import Sam3Config, Sam3Model
    torch.manual_seed(seed)
    Sam3Model(Sam3Config(**TINY)).eval().save_pretrained(root)
    make_tokenizer().save_pretrained(root)
    return Path(root)


def write_video_model_dir(root: Path, seed: int = 0, object_score_bias: float = 0.0) -> Path:
    """A combined Sam3VideoModel (detector + tracker, model_type sam3_video: facebook/sam3's layout) with the
    tokenizer. The detector is 128 wide like the tracker's FPN (in the release both are 256).
    `object_score_bias` is added to the tracker's object-score head (random weights call the object absent)."""
    from transformers import Sam3Config, Sam3TrackerVideoConfig, Sam3VideoConfig, Sam3VideoModel

    from engine.sam2.presets import SAM3_TRACKER_TINY
    torch.manual_seed(seed)
    wide = {k: dict(v, hidden_size=128) if k.endswith(("encoder_config", "decoder_config")) else v
            for k, v in TINY.items()}
    config = Sam3VideoConfig(detector_config=Sam3Config(**dict(wide, vision_config=sam3_vision(128))).to_dict(),
                             tracker_config=Sam3TrackerVideoConfig(**SAM3_TRACKER_TINY).to_dict())
    model = Sam3VideoModel(config).eval()
    with torch.no_grad():
        model.tracker_model.mask_decoder.pred_obj_score_head.proj_out.bias.add_(object_score_bias)
    model.save_pretrained(root)
    make_tokenizer().save_pretrained(root)
    return Path(root)
