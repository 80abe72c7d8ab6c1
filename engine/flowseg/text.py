"""The prompt: special tokens, X-SAM's wording, chat template, and the image placeholder.

    user:      "<image>\nCan you segment <p>{expression}</p> in this image?"
    assistant: "Sure, it is <SEG>."

The assistant turn is teacher-forced: referring segmentation always answers with that
sentence, so one forward pass gives the hidden state at <SEG> without sampling. The rendered
text is split at "<image>" and each part tokenised on its own; IMAGE_TOKEN_INDEX marks where
FlowSegModel.run_llm splices the image tokens in.
"""
from __future__ import annotations

from .config import FlowSegConfig
from .model import IMAGE_TOKEN_INDEX

IMAGE_PLACEHOLDER = "<image>"


def add_special_tokens(tokenizer, config: FlowSegConfig) -> dict:
    """Add <p>, </p>, <SEG> as special tokens (no-op for those present) and record their ids
    in `config`. Returns {token: id}. The caller resizes the LLM's embeddings if needed."""
    tokenizer.add_tokens(list(config.special_tokens), special_tokens=True)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in config.special_tokens}
    config.p_open_id = ids[config.p_open_token]
    config.p_close_id = ids[config.p_close_token]
    config.seg_id = ids[config.seg_token]
    return ids


def check_tokens(tokenizer, config: FlowSegConfig) -> None:
    """The tokenizer knows the special tokens, with the ids the model was built with."""
    for token, expected in zip(config.special_tokens,
                               (config.p_open_id, config.p_close_id, config.seg_id)):
        got = tokenizer.convert_tokens_to_ids(token)
        if expected < 0 or got != expected:
            raise ValueError(f"tokenizer maps {token!r} to {got}, but the model was built with "
                             f"id {expected}; save and load the tokenizer together with the "
                             "model (FlowSegPipeline.save_pretrained writes both)")


def clean_expression(expression, config: FlowSegConfig) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("expression must be a non-empty string describing the object, e.g. "
                         f"'the dog on the left'; got {expression!r}")
    text = " ".join(expression.split())
    for token in (*config.special_tokens, IMAGE_PLACEHOLDER):
        if token in text:
            raise ValueError(f"expression must not contain the control token {token!r}; got "
                             f"{expression!r}")
    return text


def render_prompt(tokenizer, config: FlowSegConfig, expression: str) -> str:
    """The full conversation as text, with one "<image>" placeholder."""
    user = config.prompt.format(expression=clean_expression(expression, config))
    if config.use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": user},
                    {"role": "assistant", "content": config.answer}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    else:
        text = f"{user}\n{config.answer}"
    if text.count(IMAGE_PLACEHOLDER) != 1:
        raise ValueError(f"the rendered prompt must contain {IMAGE_PLACEHOLDER!r} once; the "
                         f"chat template produced {text!r}")
    return text


def encode_prompt(tokenizer, config: FlowSegConfig, expression: str) -> list[int]:
    """Token ids with IMAGE_TOKEN_INDEX where the image goes."""
    before, after = render_prompt(tokenizer, config, expression).split(IMAGE_PLACEHOLDER)
    ids_before = tokenizer(before, add_special_tokens=False)["input_ids"] if before else []
    ids_after = tokenizer(after, add_special_tokens=False)["input_ids"]
    ids = [*ids_before, IMAGE_TOKEN_INDEX, *ids_after]
    for name, token_id in (("p_open", config.p_open_id), ("p_close", config.p_close_id),
                           ("seg", config.seg_id)):
        if token_id not in ids:
            raise ValueError(f"the tokenised prompt lacks the {name} token (id {token_id}); "
                             "the tokenizer splits it, so it was not added as a special token")
    return ids
