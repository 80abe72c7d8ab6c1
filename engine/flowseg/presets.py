"""Named sizes for random-weight FlowSeg models (tests, benchmarks) and a small word-level
tokenizer with a Qwen-style chat template, so nothing has to be downloaded.

- tiny:  every part a few layers at width 16-64; a forward pass takes milliseconds.
- demo:  the shipped demo model's size (64x64 images, 1.9M parameters): trains on 2 CPU cores.
- small: a CPU-sized model (SigLIP 224, SAM 512, a 4-layer Qwen3, 100 queries).
- full:  the paper's sizes (SigLIP-so400m 384, SAM ViT-L 1024, Qwen3-4B, 200 queries, 9
         BSF layers); random weights, for GPU benchmarks only (4.82B parameters).
"""
from __future__ import annotations

from .config import FlowSegConfig

WORDS = """the a an of in on at to from with by and or is it this that which who
left right top bottom middle center front back behind near far next above below under over
first second third last largest smallest biggest big small large tiny tall short long
red green blue yellow black white orange purple pink brown grey gray
square circle triangle shape object thing person man woman boy girl child dog cat car bus
bike horse bird tree table chair cup bottle sign coat shirt hat
can you segment image sure please find show mask where what
user assistant system""".split()
PUNCTUATION = list(".,?!'\"-")

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}")

PRESETS = ("tiny", "demo", "small", "full")


def word_tokenizer(words=WORDS):
    """A lower-casing WordLevel tokenizer (unknown words -> <unk>) with <|im_start|> /
    <|im_end|> and a chat template shaped like Qwen's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {}
    for word in [*specials, *PUNCTUATION, *words]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<|im_end|>", model_max_length=4096)
    fast.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _siglip(hidden, inter, layers, heads, image, patch) -> dict:
    from transformers import SiglipVisionConfig
    return SiglipVisionConfig(hidden_size=hidden, intermediate_size=inter,
                              num_hidden_layers=layers, num_attention_heads=heads,
                              image_size=image, patch_size=patch).to_dict()


def _sam(hidden, layers, heads, mlp, image, patch, window, global_attn, out=256) -> dict:
    from transformers import SamVisionConfig
    return SamVisionConfig(hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, mlp_dim=mlp, image_size=image,
                           patch_size=patch, window_size=window,
                           global_attn_indexes=list(global_attn), output_channels=out,
                           initializer_range=0.02).to_dict()   # SAM's default 1e-10 trains nothing


def _qwen3(hidden, inter, layers, heads, kv_heads, head_dim, vocab, **extra) -> dict:
    from transformers import Qwen3Config
    return Qwen3Config(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads,
                       head_dim=head_dim, vocab_size=vocab, max_position_embeddings=4096,
                       tie_word_embeddings=True, **extra).to_dict()


def preset_config(name: str, **overrides) -> FlowSegConfig:
    """FlowSegConfig for a preset; overrides are FlowSegConfig fields (e.g. switches)."""
    if name == "tiny":
        base = dict(
            siglip=_siglip(32, 64, 2, 2, image=32, patch=8),                 # 16 tokens
            sam=_sam(32, 3, 2, 64, image=64, patch=8, window=4, global_attn=[2], out=16),
            llm=_qwen3(32, 64, 2, 4, 2, 8, vocab=64),
            sam_feature_layers=(1, 2, 3), connector_width=32, connector_mid=16,
            pixel_feature_size=32, mask_feature_size=32, pixel_encoder_layers=1,
            pixel_encoder_ffn=64, pixel_heads=4, hidden_dim=32, num_heads=4,
            dim_feedforward=64, decoder_layers=3, num_queries=8, bar_comp_channels=4,
            bar_hidden=8)
    elif name == "demo":
        base = dict(
            siglip=_siglip(96, 192, 3, 4, image=64, patch=8),                # 64 tokens
            sam=_sam(64, 4, 4, 128, image=64, patch=4, window=8, global_attn=[3], out=32),
            llm=_qwen3(128, 256, 4, 4, 2, 32, vocab=64),                    # 64 SAM tokens too
            sam_feature_layers=(2, 3, 4), connector_width=64, connector_mid=32,
            pixel_feature_size=64, mask_feature_size=64, pixel_encoder_layers=1,
            pixel_encoder_ffn=128, pixel_heads=4, hidden_dim=64, num_heads=4,
            dim_feedforward=128, decoder_layers=6, num_queries=16, bar_comp_channels=8,
            bar_hidden=16)
    elif name == "small":
        base = dict(
            siglip=_siglip(192, 768, 4, 4, image=224, patch=14),             # 256 tokens
            sam=_sam(192, 6, 4, 768, image=512, patch=16, window=8, global_attn=[2, 5]),
            llm=_qwen3(256, 768, 4, 4, 2, 64, vocab=512),
            sam_feature_layers=(3, 4, 6), connector_width=192, connector_mid=96,
            pixel_feature_size=128, mask_feature_size=128, pixel_encoder_layers=2,
            pixel_encoder_ffn=512, pixel_heads=4, hidden_dim=128, num_heads=8,
            dim_feedforward=1024, decoder_layers=9, num_queries=100)
    elif name == "full":
        base = dict(
            siglip=_siglip(1152, 4304, 27, 16, image=384, patch=14),         # so400m, 729 tokens
            sam=_sam(1024, 24, 16, 4096, image=1024, patch=16, window=14,
                     global_attn=[5, 11, 17, 23]),                           # ViT-L
            llm=_qwen3(2560, 9728, 36, 32, 8, 128, vocab=151936, rope_theta=5000000.0,
                       rms_norm_eps=1e-6),                                   # Qwen3-4B
            sam_feature_layers=(12, 18, 24), connector_width=1024, connector_mid=512)
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
    base.update(overrides)
    return FlowSegConfig(**base)


def random_pipeline(name_or_config="tiny", *, seed: int = 0, device=None, dtype=None,
                    **overrides):
    """A FlowSegPipeline with random weights and the word-level tokenizer."""
    from .pipeline import FlowSegPipeline
    config = (preset_config(name_or_config, **overrides) if isinstance(name_or_config, str)
              else name_or_config.replace(**overrides))
    return FlowSegPipeline.from_config(config, word_tokenizer(), seed=seed, device=device,
                                       dtype=dtype)
