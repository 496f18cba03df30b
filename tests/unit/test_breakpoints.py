"""QWEN3VL_INSPECT_BREAK stops a Trace at named stages with their tensors as local variables."""

import sys

import torch
from PIL import Image

from qwen3vl_inspect import VisionConfig, VisionEncoder, preprocess, trace

HITS: list[dict] = []


def record_hit(*args, **kwargs):
    """Stands in for pdb via PYTHONBREAKPOINT: keeps what the debugger would show."""
    frame = sys._getframe(1)
    HITS.append({"function": frame.f_code.co_name, **{k: frame.f_locals.get(k) for k in ("name", "output", "block_input")}})


def test_stage_breakpoints_call_the_breakpoint_hook(monkeypatch):
    HITS.clear()
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_hit")
    monkeypatch.setenv("QWEN3VL_INSPECT_BREAK", "blocks.1.attn, merger,deepstack.*")
    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])
    encoder = VisionEncoder(VisionConfig.preset("tiny")).eval()
    tr = trace(encoder, preprocess([Image.new("RGB", (64, 64), (200, 10, 10))]))
    tr.run()
    assert [h["name"] for h in HITS] == ["deepstack.0", "blocks.1.attn", "deepstack.1", "merger"]
    attn = HITS[1]
    assert attn["function"] == "stop_at_stage"
    assert torch.equal(attn["output"], tr.tensor("blocks.1.attn"))
    assert torch.equal(attn["block_input"], tr.block_input(1))
    assert HITS[-1]["output"].shape == (tr.inputs.num_patches // 4, 96)


def test_no_variable_no_stop(monkeypatch):
    HITS.clear()
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_hit")
    monkeypatch.delenv("QWEN3VL_INSPECT_BREAK", raising=False)
    encoder = VisionEncoder(VisionConfig.preset("tiny")).eval()
    trace(encoder, preprocess([Image.new("RGB", (64, 64))])).run()
    assert HITS == []
