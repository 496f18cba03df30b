"""`--model owner/name` finds the checkpoint in a (fake) local Hugging Face cache, offline; else one clear line.

The fake cache has the layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/…}.
Nothing here touches the network: the download path is opt-in and never exercised by tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qwen3vl_inspect import session
from qwen3vl_inspect.cli import main
from qwen3vl_inspect.config import VisionConfig, checkpoint_folder
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.hub import DOWNLOAD_ENV, looks_like_repo_id, vision_shards
from qwen3vl_inspect.model.encoder import VisionEncoder

REPO = "Qwen/Qwen3-VL-Tiny-Test"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HUB_CACHE pointing at a cache that holds REPO's snapshot (a save_pretrained tiny tower)."""
    cache = tmp_path / "hub"
    repo = cache / ("models--" + REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    VisionEncoder(VisionConfig.preset("tiny"), seed=5).save_pretrained(repo / "snapshots" / COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(DOWNLOAD_ENV, raising=False)
    return repo / "snapshots" / COMMIT


@pytest.mark.parametrize(("name", "expected"), [
    ("Qwen/Qwen3-VL-2B-Instruct", True), ("owner/model.v2", True), ("./a/b", False), ("/abs/x", False),
    ("~/x/y", False), ("a/b/c", False), ("tiny", False), ("../up", False), ("a/..", False),
])
def test_repo_id_shape(name: str, expected: bool) -> None:
    assert looks_like_repo_id(name) is expected


def test_cached_repo_id_resolves_to_its_snapshot(hub_cache: Path) -> None:
    assert checkpoint_folder(REPO) == hub_cache
    encoder = session.load_encoder(REPO)
    assert encoder.weights_source == str(hub_cache)
    reference = VisionEncoder(VisionConfig.preset("tiny"), seed=5)
    assert torch.equal(encoder.blocks[0].attn.qkv.weight, reference.blocks[0].attn.qkv.weight)
    assert session.check_model(REPO).depth == 4


def test_cli_runs_on_a_cached_repo_id(hub_cache: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "--model", REPO]) == 0
    assert str(hub_cache) in capsys.readouterr().out.replace("\n", "")


def test_uncached_repo_id_is_one_clear_line(hub_cache: Path, capsys: pytest.CaptureFixture) -> None:
    other = "Qwen/Qwen3-VL-2B-Instruct"
    assert checkpoint_folder(other) is None
    with pytest.raises(InputError) as info:
        session.check_model(other)
    message = str(info.value)
    assert message.startswith(f"{other}: not a local folder and not in the local Hugging Face cache ({hub_cache.parents[2]})")
    assert f"hf download {other}" in message and f"{DOWNLOAD_ENV}=1" in message and "\n" not in message
    assert main(["trace", "--model", other]) == 2
    err = capsys.readouterr().err
    assert "not in the local Hugging Face cache" in err and "Traceback" not in err


def test_a_local_folder_named_like_a_repo_id_wins(tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = VisionEncoder(VisionConfig.preset("tiny"), seed=9).save_pretrained(tmp_path / REPO)
    assert checkpoint_folder(REPO) == Path(REPO) and local.resolve() == (tmp_path / REPO).resolve()


def test_vision_shards_are_picked_from_the_index() -> None:
    weight_map = {
        "model.visual.blocks.0.attn.qkv.weight": "model-00001-of-00004.safetensors",
        "model.visual.merger.linear_fc2.bias": "model-00004-of-00004.safetensors",
        "model.language_model.embed_tokens.weight": "model-00002-of-00004.safetensors",
        "lm_head.weight": "model-00003-of-00004.safetensors",
        "visual.patch_embed.proj.weight": "model-00001-of-00004.safetensors",
    }
    assert vision_shards(weight_map) == ["model-00001-of-00004.safetensors", "model-00004-of-00004.safetensors"]


def test_opt_in_download_asks_only_for_config_index_and_vision_shards(tmp_path: Path, hub_cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The download path with huggingface_hub's snapshot_download replaced by a local fake (no network)."""
    import json

    import huggingface_hub

    remote = {"config.json": "{}", "model.safetensors.index.json": json.dumps({"weight_map": {
        "model.visual.blocks.0.attn.qkv.weight": "model-00002-of-00003.safetensors",
        "model.language_model.embed_tokens.weight": "model-00001-of-00003.safetensors",
        "lm_head.weight": "model-00003-of-00003.safetensors"}})}
    calls: list[list[str]] = []

    def fake_snapshot_download(repo_id: str, allow_patterns: list[str] | None = None, local_files_only: bool = False,
                               cache_dir: str | None = None) -> str:
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        calls.append(list(allow_patterns or []))
        folder = tmp_path / "fetched"
        folder.mkdir(exist_ok=True)
        for name in allow_patterns or []:
            (folder / name).write_text(remote.get(name, "weights"))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv(DOWNLOAD_ENV, "1")
    assert checkpoint_folder("Qwen/Not-Cached") == tmp_path / "fetched"
    small = ["config.json", "preprocessor_config.json", "model.safetensors.index.json"]
    assert calls == [small, [*small, "model-00002-of-00003.safetensors"]]
