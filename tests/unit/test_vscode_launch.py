"""Every VS Code launch configuration points at something that exists, and debugs as the guide says."""

from __future__ import annotations

import importlib.util
import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from qwen3vl_inspect.config import VisionConfig, checkpoint_folder
from qwen3vl_inspect.session import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / ".vscode"
CONFIGS = json.loads((VSCODE / "launch.json").read_text())["configurations"]


def resolve(value: str) -> Path:
    return Path(value.replace("${workspaceFolder}", str(ROOT)))


def default_stage_names() -> list[str]:
    """Stage and block sub-stage names of the default model, from its config alone (nothing is built)."""
    from qwen3vl_inspect.stage_name import BLOCK_STEPS as SUBSTAGES

    folder = checkpoint_folder(DEFAULT_MODEL)
    config = VisionConfig.from_json(folder / "config.json") if folder is not None else VisionConfig.preset(DEFAULT_MODEL)
    names = ["input", "patchify", "patch_embed", "pos_embed", "rotary", "merger"]
    names += [f"deepstack.{k}" for k in range(len(config.deepstack_visual_indexes))]
    for layer in range(config.depth):
        names += [f"blocks.{layer}"] + [f"blocks.{layer}.{sub}" for sub in SUBSTAGES]
    return names


def test_the_expected_configurations_are_there():
    names = " | ".join(c["name"] for c in CONFIGS)
    for wanted in ("TUI", "Demo script", "stop at", "pytest", "Attach"):
        assert wanted in names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["name"])
def test_configuration_names_something_that_exists(config):
    assert config["type"] == "debugpy"
    assert config["justMyCode"] is False, "the guide's point: step into torch and transformers"
    if config["request"] == "launch":
        assert config["console"] == "integratedTerminal"
        assert ("module" in config) != ("program" in config)
        if "module" in config:
            assert importlib.util.find_spec(config["module"]) is not None, config["module"]
        else:
            assert resolve(config["program"]).is_file(), config["program"]
        assert resolve(config.get("cwd", "${workspaceFolder}")).is_dir()
        for arg in config.get("args", []):
            if "${workspaceFolder}" in arg:
                assert resolve(arg).exists(), arg
    else:
        assert config["request"] == "attach"
        assert config["connect"]["host"] in ("127.0.0.1", "localhost") and isinstance(config["connect"]["port"], int)
        for mapping in config.get("pathMappings", []):
            assert resolve(mapping["localRoot"]).is_dir()


def test_stage_breakpoints_name_stages_of_the_default_model():
    names = default_stage_names()
    for config in CONFIGS:
        patterns = config.get("env", {}).get("QWEN3VL_INSPECT_BREAK")
        if patterns:
            for pattern in patterns.split(","):
                assert any(fnmatchcase(n, pattern.strip()) for n in names), f"{config['name']}: no stage {pattern}"


def test_settings_and_extensions():
    settings = json.loads((VSCODE / "settings.json").read_text())
    assert settings["python.testing.pytestEnabled"] is True
    assert resolve(settings["python.defaultInterpreterPath"]).parent.parent.name == ".venv"
    extensions = json.loads((VSCODE / "extensions.json").read_text())["recommendations"]
    assert {"ms-python.python", "ms-python.debugpy", "ms-toolsai.jupyter"} <= set(extensions)
