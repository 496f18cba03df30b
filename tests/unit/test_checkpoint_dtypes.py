"""Quantized checkpoints are refused by name; mixed float dtypes load as one; weights outlive their file.

The SIGBUS test runs in a subprocess: a process killed by a signal shows up there as a negative return
code instead of taking the test run down with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import CheckpointError
from qwen3vl_inspect.model.checkpoint import describe_checkpoint, load_vision_state_dict
from qwen3vl_inspect.model.encoder import VisionEncoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in VisionEncoder(VisionConfig.preset("tiny")).state_dict().items()}


def _write(folder: Path, tensors: dict[str, torch.Tensor], **config_extra: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "qwen3_vl", "vision_config": VisionConfig.preset("tiny").to_dict(), **config_extra}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"model.visual." + k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    return folder


def _one_line_refusal(folder: Path, expected: dict) -> str:
    with pytest.raises(CheckpointError) as info:
        load_vision_state_dict(folder, expected)
    message = str(info.value)
    assert "\n" not in message
    with pytest.raises(CheckpointError):  # `info` / check_model read headers only and must refuse too
        describe_checkpoint(folder)
    return message


@pytest.mark.parametrize(
    ("dtype", "label"),
    [(torch.int8, "I8"), (torch.float8_e4m3fn, "F8_E4M3"), (torch.bool, "BOOL"), (torch.int32, "I32"), (torch.uint8, "U8")],
)
def test_non_float_tensor_is_refused_by_dtype_and_name(tmp_path: Path, state: dict, dtype: torch.dtype, label: str) -> None:
    tensors = dict(state)
    tensors["blocks.1.mlp.linear_fc1.weight"] = tensors["blocks.1.mlp.linear_fc1.weight"].to(dtype)
    folder = _write(tmp_path / "ck", tensors)
    message = _one_line_refusal(folder, {k: v.shape for k, v in state.items()})
    assert f"stored as {label}" in message and "model.visual.blocks.1.mlp.linear_fc1.weight" in message
    assert "unquantized" in message


@pytest.mark.parametrize("where", ["top", "text_config", "vision_config"])
def test_quantization_config_is_refused(tmp_path: Path, state: dict, where: str) -> None:
    folder = _write(tmp_path / "ck", state)
    config = json.loads((folder / "config.json").read_text())
    quant = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    if where == "top":
        config["quantization_config"] = quant
    else:
        config.setdefault(where, {})["quantization_config"] = quant
    (folder / "config.json").write_text(json.dumps(config))
    message = _one_line_refusal(folder, {k: v.shape for k, v in state.items()})
    assert "'quantization_config'" in message and "bitsandbytes" in message


def test_mixed_float_dtypes_load_as_the_majority_dtype_and_run(tmp_path: Path, state: dict) -> None:
    """bf16 weights with fp32 norms and biases (a common export) must give one dtype, not a forward crash."""
    tensors = {k: (v.float() if ("norm" in k or k.endswith("bias")) else v.to(torch.bfloat16)) for k, v in state.items()}
    folder = _write(tmp_path / "ck", tensors)
    assert describe_checkpoint(folder)["dtypes"] == ["BF16", "F32"]
    encoder = VisionEncoder.from_pretrained(folder)
    assert {p.dtype for p in encoder.state_dict().values()} == {torch.bfloat16}
    pixels = torch.randn(16, encoder.config.patch_dim, dtype=torch.bfloat16)
    out = encoder(pixels, torch.tensor([[1, 4, 4]]))
    assert out.pooler_output.dtype == torch.bfloat16 and torch.isfinite(out.pooler_output.float()).all()
    as_fp32 = VisionEncoder.from_pretrained(folder, dtype=torch.float32)  # an explicit dtype still wins
    assert {p.dtype for p in as_fp32.state_dict().values()} == {torch.float32}


TRUNCATE_AFTER_LOAD = r"""
import sys
from pathlib import Path
import torch
from qwen3vl_inspect.model.encoder import VisionEncoder

folder = Path(sys.argv[1])
encoder = VisionEncoder.from_pretrained(folder)
shard = folder / "model.safetensors"
size = shard.stat().st_size
with open(shard, "r+b") as handle:  # what a re-download or an interrupted copy does to the file
    handle.truncate(0)
with open(shard, "wb") as handle:
    handle.write(b"\0" * 64)
torch.manual_seed(0)
pixels = torch.randn(64, encoder.config.patch_dim)
with torch.no_grad():
    out = encoder(pixels, torch.tensor([[1, 8, 8]]))
print("forward ok", tuple(out.pooler_output.shape), float(out.pooler_output.abs().sum()), size)
"""


def test_truncating_the_checkpoint_after_load_does_not_kill_forward(tmp_path: Path) -> None:
    encoder = VisionEncoder(VisionConfig.preset("tiny"), seed=3)
    folder = encoder.save_pretrained(tmp_path / "ck")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", TRUNCATE_AFTER_LOAD, str(folder)], capture_output=True, text=True,
                            env=env, timeout=120, cwd=ROOT)
    assert result.returncode != -signal.SIGBUS, "SIGBUS: the loaded weights were still a view of the file"
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("forward ok (16, 96)")


def test_loaded_tensors_own_their_memory(tmp_path: Path, state: dict) -> None:
    """No tensor may keep a file mapping alive: each owns a storage exactly its own size."""
    folder = _write(tmp_path / "ck", state)
    loaded = load_vision_state_dict(folder, {k: v.shape for k, v in state.items()})
    for name, tensor in loaded.items():
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size(), name
        assert torch.equal(tensor, state[name])


def test_shard_truncated_during_load_is_a_checkpoint_error(tmp_path: Path, state: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers read fine, then the file shrinks before the data is read: a clean error, not SIGBUS."""
    from qwen3vl_inspect.model import checkpoint

    folder = _write(tmp_path / "ck", state)
    real_plan = checkpoint._plan

    def plan_then_truncate(*args: object) -> object:
        result = real_plan(*args)
        shard = folder / "model.safetensors"
        os.truncate(shard, shard.stat().st_size // 2)
        return result

    monkeypatch.setattr(checkpoint, "_plan", plan_then_truncate)
    with pytest.raises(CheckpointError, match="the file ends inside tensor 'model.visual.*truncated while loading"):
        load_vision_state_dict(folder, {k: v.shape for k, v in state.items()})
