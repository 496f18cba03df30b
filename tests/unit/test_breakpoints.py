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


def test_pattern_matching_no_stage_is_warned_in_one_line(monkeypatch, capsys):
    from qwen3vl_inspect.cli import main

    HITS.clear()
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_hit")
    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])
    monkeypatch.setenv("QWEN3VL_INSPECT_BREAK", "block.1.attn,merger,blocks.9")
    assert main(["trace", "--model", "tiny"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1
    assert err[0] == ("warning: QWEN3VL_INSPECT_BREAK pattern(s) 'block.1.attn', 'blocks.9' match no stage; stages are: "
                      "input, patchify, patch_embed, pos_embed, rotary, blocks.0..blocks.3 (steps "
                      "blocks.N.norm1|attn|residual1|norm2|mlp|residual2), deepstack.0..deepstack.1, merger "
                      "(globs such as blocks.*.attn work)")
    assert [h["name"] for h in HITS] == ["merger"]  # the pattern that matches still stops


def test_matching_patterns_give_no_warning(monkeypatch, capsys):
    from qwen3vl_inspect.breakpoints import top_level_matches, unmatched
    from qwen3vl_inspect.tracing import stage_names_for

    names = stage_names_for(VisionConfig.preset("tiny"))
    assert unmatched(["blocks.*.attn", "deepstack.?", "merger", "input"], names) == []
    assert top_level_matches(["blocks.1.attn", "deepstack.*", "blocks.3"], names) == \
        ["deepstack.0", "blocks.1", "deepstack.1", "blocks.3"]  # plan order: tiny taps blocks 0 and 2


def test_trace_can_be_told_not_to_call_the_debugger(monkeypatch):
    HITS.clear()
    monkeypatch.setenv("PYTHONBREAKPOINT", f"{__name__}.record_hit")
    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])
    monkeypatch.setenv("QWEN3VL_INSPECT_BREAK", "merger")
    tr = trace(VisionEncoder(VisionConfig.preset("tiny")).eval(), preprocess([Image.new("RGB", (64, 64))]))
    tr.stop_in_debugger = False  # what the TUI does: it pauses by itself
    tr.run()
    assert HITS == []
