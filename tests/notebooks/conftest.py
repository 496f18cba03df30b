"""Shared fixtures of the notebook tests: a `tiny` encoder (random weights, 4 blocks) built once, and
fresh lazy Traces of the embedded demo image over it."""

from __future__ import annotations

import pytest

from qwen3vl_inspect import VisionConfig, VisionEncoder


@pytest.fixture(scope="session")
def tiny_encoder() -> VisionEncoder:
    return VisionEncoder(VisionConfig.preset("tiny")).eval()


@pytest.fixture
def tiny_trace(tiny_encoder):
    from qwen3vl_inspect.notebook import open_trace

    return open_trace(encoder=tiny_encoder)
