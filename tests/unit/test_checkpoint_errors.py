"""Every refusal of `load_vision_state_dict` is one line naming the file and the fix; layouts load 1:1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import CheckpointError
from qwen3vl_inspect.model.checkpoint import describe_checkpoint, load_vision_state_dict

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 123456\n"
LM = {"model.language_model.embed_tokens.weight": torch.randn(50, 96), "lm_head.weight": torch.randn(50, 96)}


def _tiny_state() -> dict[str, torch.Tensor]:
    """Vision weights with the tiny preset's names and shapes (ours if the encoder exists, else transformers')."""
    torch.manual_seed(0)
    try:
        from qwen3vl_inspect.model.encoder import VisionEncoder
    except ImportError:
        pytest.importorskip("transformers")
        from transformers import Qwen3VLVisionConfig, Qwen3VLVisionModel

        data = VisionConfig.preset("tiny").to_dict()
        data.pop("model_type")
        return {k: v.clone() for k, v in Qwen3VLVisionModel(Qwen3VLVisionConfig(**data)).state_dict().items()}
    return {k: v.clone() for k, v in VisionEncoder(VisionConfig.preset("tiny")).state_dict().items()}


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _tiny_state()


@pytest.fixture(scope="module")
def expected(state: dict[str, torch.Tensor]) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in state.items()}


def _write(folder: Path, tensors: dict[str, torch.Tensor], prefix: str = "model.visual.", shards: int = 0) -> Path:
    """A checkpoint folder: one model.safetensors, or `shards` files plus an index (LM in its own shard)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen3_vl", "vision_config": VisionConfig.preset("tiny").to_dict()}))
    named = {prefix + k: v.contiguous() for k, v in tensors.items()}
    lm = LM if prefix else {}
    if not shards:
        save_file({**named, **lm}, str(folder / "model.safetensors"))
        return folder
    keys = sorted(named)
    weight_map: dict[str, str] = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards + 1:05d}.safetensors"
        part = {k: named[k] for k in keys[i::shards]}
        save_file(part, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    lm_name = f"model-{shards + 1:05d}-of-{shards + 1:05d}.safetensors"
    save_file(dict(LM), str(folder / lm_name))
    weight_map.update(dict.fromkeys(LM, lm_name))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def _refusal(folder: Path, expected: dict[str, torch.Size], *fragments: str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_vision_state_dict(folder, expected)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---- folder and file refusals -------------------------------------------------------------------


def test_missing_folder(tmp_path: Path, expected: dict) -> None:
    _refusal(tmp_path / "nope", expected, str(tmp_path / "nope"), "not found")


def test_file_instead_of_folder(tmp_path: Path, expected: dict) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    _refusal(path, expected, str(path), "not a folder")


def test_missing_config(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state)
    (folder / "config.json").unlink()
    _refusal(folder, expected, "config.json")


def test_no_weights(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state)
    (folder / "model.safetensors").unlink()
    _refusal(folder, expected, str(folder), "model.safetensors")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth"])
def test_pickle_only_refused(tmp_path: Path, state: dict, expected: dict, name: str) -> None:
    folder = _write(tmp_path / "ck", state)
    (folder / "model.safetensors").unlink()
    torch.save({"a": torch.zeros(1)}, folder / name)
    message = _refusal(folder, expected, name, "arbitrary code", "safetensors")
    assert "pickle" in message.lower()


@pytest.mark.parametrize("shard", ["../evil.safetensors", "/etc/evil.safetensors", "sub/x.safetensors", "a\\b.safetensors", "..", "C:x.safetensors"])
def test_index_shard_must_be_plain_name(tmp_path: Path, state: dict, expected: dict, shard: str) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = shard
    index.write_text(json.dumps(data))
    _refusal(folder, expected, str(index), repr(shard), "plain file name")


def test_index_pickle_shard_refused(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"] = {k: "pytorch_model-00001.bin" for k in data["weight_map"]}
    index.write_text(json.dumps(data))
    _refusal(folder, expected, "pytorch_model-00001.bin", "safetensors")


def test_malformed_index(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    (folder / "model.safetensors.index.json").write_text("{not json")
    _refusal(folder, expected, "model.safetensors.index.json", "re-download")


def test_lfs_pointer_single_file(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state)
    (folder / "model.safetensors").write_text(LFS_POINTER)
    _refusal(folder, expected, str(folder / "model.safetensors"), "Git LFS pointer", "git lfs pull")


def test_lfs_pointer_shard(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    shard = folder / "model-00001-of-00003.safetensors"
    shard.write_text(LFS_POINTER)
    _refusal(folder, expected, str(shard), "git lfs pull")


@pytest.mark.parametrize("cut", [0, 5, 100, -64])
def test_truncated_shard_named(tmp_path: Path, state: dict, expected: dict, cut: int) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    shard = folder / "model-00002-of-00003.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    _refusal(folder, expected, str(shard), "truncated or corrupt", "re-download")


def test_missing_shard_file(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    shard = folder / "model-00001-of-00003.safetensors"
    shard.unlink()
    _refusal(folder, expected, str(shard), "not found", "download")


def test_index_lists_tensor_not_in_shard(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["model.visual.blocks.0.norm1.weight"] = "model-00003-of-00003.safetensors"  # the LM shard
    index.write_text(json.dumps(data))
    _refusal(folder, expected, "model-00003-of-00003.safetensors", "model.visual.blocks.0.norm1.weight")


# ---- name and shape mismatches ------------------------------------------------------------------


def test_missing_tensors_listed(tmp_path: Path, state: dict, expected: dict) -> None:
    kept = {k: v for k, v in state.items() if not k.startswith("blocks.1.")}
    dropped = sorted(set(state) - set(kept))
    more = [f"+{len(dropped) - 10} more"] if len(dropped) > 10 else []
    _refusal(_write(tmp_path / "ck", kept), expected, f"{len(dropped)} missing", dropped[0], "config.json", *more)


def test_many_missing_truncated_with_count(tmp_path: Path, state: dict, expected: dict) -> None:
    kept = {k: v for k, v in state.items() if k.startswith(("patch_embed", "pos_embed"))}
    missing = len(state) - len(kept)
    assert missing > 10
    _refusal(_write(tmp_path / "ck", kept), expected, f"{missing} missing", f"+{missing - 10} more")


def test_unexpected_tensor_listed(tmp_path: Path, state: dict, expected: dict) -> None:
    extra = {**state, "blocks.9.attn.qkv.weight": torch.zeros(3, 3)}
    _refusal(_write(tmp_path / "ck", extra), expected, "1 unexpected", "blocks.9.attn.qkv.weight")


def test_wrong_shape_listed(tmp_path: Path, state: dict, expected: dict) -> None:
    bad = {**state, "pos_embed.weight": torch.zeros(100, 64)}
    want = "(" + ", ".join(map(str, expected["pos_embed.weight"])) + ")"
    _refusal(_write(tmp_path / "ck", bad), expected, "1 with wrong shape", f"pos_embed.weight expected {want} found (100, 64)")


def test_not_a_vision_checkpoint(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = tmp_path / "ck"
    _write(folder, state)
    save_file(dict(LM), str(folder / "model.safetensors"))
    _refusal(folder, expected, "no vision-tower tensors")


def test_mixed_prefixes(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state)
    save_file({**{"model.visual." + k: v for k, v in state.items()}, "visual.pos_embed.weight": state["pos_embed.weight"].clone()}, str(folder / "model.safetensors"))
    _refusal(folder, expected, "mixes two layouts")


# ---- layouts, dtype, describe -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["model.visual.", "visual.", ""])
@pytest.mark.parametrize("shards", [0, 3])
def test_layouts_load_exactly(tmp_path: Path, state: dict, expected: dict, prefix: str, shards: int) -> None:
    folder = _write(tmp_path / "ck", state, prefix=prefix, shards=shards)
    loaded = load_vision_state_dict(folder, expected)
    assert list(loaded) == list(expected)
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor), name
    info = describe_checkpoint(folder)
    assert info["prefix"] == prefix
    assert info["vision_tensors"] == len(state)
    assert info["vision_bytes"] == sum(t.numel() * t.element_size() for t in state.values())
    assert info["dtypes"] == ["F32"]
    assert len(info["vision_shards"]) == max(shards, 1)


def test_language_model_shard_never_opened(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    (folder / "model-00003-of-00003.safetensors").write_bytes(b"garbage: the LM shard must not be read")
    loaded = load_vision_state_dict(folder, expected)
    assert torch.equal(loaded["merger.linear_fc2.weight"], state["merger.linear_fc2.weight"])


def test_expected_may_be_a_state_dict(tmp_path: Path, state: dict) -> None:
    loaded = load_vision_state_dict(_write(tmp_path / "ck", state), state)
    assert set(loaded) == set(state)


def test_stale_inv_freq_buffer_ignored(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", {**state, "rotary_pos_emb.inv_freq": torch.ones(4)})
    assert "rotary_pos_emb.inv_freq" not in load_vision_state_dict(folder, expected)


def test_dtype_cast(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state, shards=2)
    loaded = load_vision_state_dict(folder, expected, dtype=torch.bfloat16, device="cpu")
    for name, tensor in state.items():
        assert loaded[name].dtype == torch.bfloat16
        assert torch.equal(loaded[name], tensor.to(torch.bfloat16)), name


def test_dtype_none_keeps_checkpoint_dtype(tmp_path: Path, state: dict, expected: dict) -> None:
    half = {k: v.to(torch.bfloat16) for k, v in state.items()}
    loaded = load_vision_state_dict(_write(tmp_path / "ck", half), expected)
    assert all(t.dtype == torch.bfloat16 for t in loaded.values())
    up = load_vision_state_dict(tmp_path / "ck", expected, dtype=torch.float32)
    assert torch.equal(up["pos_embed.weight"], half["pos_embed.weight"].float())
    assert describe_checkpoint(tmp_path / "ck")["dtypes"] == ["BF16"]


def test_loaded_views_do_not_write_back(tmp_path: Path, state: dict, expected: dict) -> None:
    folder = _write(tmp_path / "ck", state)
    load_vision_state_dict(folder, expected)["pos_embed.weight"].add_(1.0)
    assert torch.equal(load_vision_state_dict(folder, expected)["pos_embed.weight"], state["pos_embed.weight"])
