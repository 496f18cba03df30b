"""The Qwen3-VL vision encoder, readable top to bottom.

pixel_values [N, C·T·P·P] ─► patch embedding [N, hidden] ─► + interpolated position embedding
─► 2D rotary tables ─► blocks 0…L-1 (DeepStack mergers tap some of them) ─► 2×2 merger [N/4, out].

`forward` is only a composition of the public stage methods below, so a debugger (or the
Trace) can call them one at a time and get exactly the numbers `forward` gets.
Parameter names equal transformers' `model.visual`, so checkpoints load 1:1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import torch
from torch import nn

from qwen3vl_inspect.config import PRESETS, SHIPPED_WEIGHTS, VisionConfig, checkpoint_folder, unknown_model
from qwen3vl_inspect.model.layers import ATTENTION_IMPLEMENTATIONS, Block, PatchEmbed, PatchMerger, init_weights
from qwen3vl_inspect.model.positions import PatchPositions, patch_positions, rotary_cos_sin

RANDOM_WEIGHTS = "random weights"


@dataclass
class VisionOutput:
    """What transformers' `Qwen3VLVisionModel` returns, under the same names."""

    last_hidden_state: torch.Tensor  # [N, hidden], merge order
    pooler_output: torch.Tensor  # [N/4, out_hidden]: the tokens that replace <|image_pad|>
    deepstack_features: list[torch.Tensor] = field(default_factory=list)  # each [N/4, out_hidden]
    grid_thw: torch.Tensor | None = None


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig, attn_implementation: str = "sdpa", seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.pos_embed = nn.Embedding(config.num_position_embeddings, config.hidden_size)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.merger = PatchMerger(config, norm_after_shuffle=False)
        self.deepstack_merger_list = nn.ModuleList(
            PatchMerger(config, norm_after_shuffle=True) for _ in config.deepstack_visual_indexes
        )
        self.weights_source = f"{RANDOM_WEIGHTS} (seed {seed})"
        self.set_attention_implementation(attn_implementation)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            init_weights(self)

    # ---- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path_or_preset: str | Path,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        attn_implementation: str = "sdpa",
    ) -> VisionEncoder:
        """Load a local Hugging Face checkpoint folder (safetensors), a preset whose weights ship with the
        package ("demo"), or build a preset with seeded random weights.

        dtype=None keeps a checkpoint folder's dtype (the one most weights use when it mixes float dtypes;
        float32 for presets).
        """
        name = str(path_or_preset)
        folder = checkpoint_folder(name)
        if folder is not None:
            return cls._from_folder(folder, dtype, device, attn_implementation)
        key = name.lower()
        if key in SHIPPED_WEIGHTS:
            folder, label = SHIPPED_WEIGHTS[key]
            encoder = cls._from_folder(folder, dtype or torch.float32, device, attn_implementation)
            encoder.config, encoder.weights_source = replace(encoder.config, source=key), label
            return encoder
        if key in PRESETS:
            encoder = cls(VisionConfig.preset(name), attn_implementation=attn_implementation)
            return encoder.to(device=device, dtype=dtype or torch.float32).eval()
        raise unknown_model(name)

    @classmethod
    def _from_folder(
        cls, path: Path, dtype: torch.dtype | None, device: str | torch.device | None, attn_implementation: str
    ) -> VisionEncoder:
        from qwen3vl_inspect.model.checkpoint import load_vision_state_dict

        config = VisionConfig.from_json(path / "config.json")
        with torch.device("meta"):
            encoder = cls(config, attn_implementation=attn_implementation)
        expected = {key: tensor.shape for key, tensor in encoder.state_dict().items()}
        state = load_vision_state_dict(path, expected, dtype=dtype, device=device)
        encoder.load_state_dict(state, strict=True, assign=True)
        encoder.weights_source = str(path)
        return encoder.eval()

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write a vision-only checkpoint (config.json + model.safetensors) that `from_pretrained` reads."""
        import json

        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return folder

    @property
    def has_random_weights(self) -> bool:
        return self.weights_source.startswith(RANDOM_WEIGHTS)

    def set_attention_implementation(self, name: str) -> None:
        """'sdpa' (fast) or 'explicit' (float32 softmax, probabilities visible at `blocks.i.attn.probs`)."""
        if name not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(f"attention implementation {name!r}; choose {' or '.join(ATTENTION_IMPLEMENTATIONS)}")
        for index in range(len(self.blocks)):
            self.block(index).attn.implementation = name
        self.attn_implementation = name

    def extra_repr(self) -> str:
        return f"{self.config.describe()}, weights: {self.weights_source}"

    # ---- stages (forward is their composition) --------------------------------------------------

    def patch_positions(self, grid_thw: torch.Tensor) -> PatchPositions:
        """Position data for every patch: interpolation taps, rotary ids, attention segments."""
        return patch_positions(grid_thw, self.config.num_grid_per_side, self.config.spatial_merge_size)

    def embed_patches(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, C·T·P·P] pixels → [N, hidden] patch vectors."""
        return self.patch_embed(pixel_values)

    def position_embedding(self, positions: PatchPositions, dtype: torch.dtype) -> torch.Tensor:
        """Bilinear blend of the 4 nearest learned-grid vectors for each patch: [N, hidden]."""
        table = self.pos_embed(positions.interp_indices)  # (N, 4, hidden)
        blended = (table * positions.interp_weights[:, :, None]).sum(1)  # (N, hidden), float32
        return blended.to(dtype)

    def rotary_embedding(self, positions: PatchPositions) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables [N, head_dim] from each patch's (row, col)."""
        return rotary_cos_sin(positions.rotary_ids, self.config.head_dim, self.config.rope_theta)

    def run_block(
        self,
        index: int,
        hidden: torch.Tensor,
        positions: PatchPositions,
        rotary: tuple[torch.Tensor, torch.Tensor],
    ) -> torch.Tensor:
        return self.block(index)(hidden, positions.cu_seqlens, rotary)

    def block(self, index: int) -> Block:
        """Block `index`, typed (nn.ModuleList indexing gives a plain Module)."""
        return cast(Block, self.blocks[index])

    def deepstack_merge(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        """If block `layer` is a DeepStack tap, its merged features [N/4, out_hidden]; else None."""
        if layer not in self.config.deepstack_visual_indexes:
            return None
        return self.deepstack_feature(self.config.deepstack_visual_indexes.index(layer), hidden)

    def deepstack_feature(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """DeepStack merger `index` applied to the hidden state of the block it taps: [N/4, out_hidden]."""
        return self.deepstack_merger_list[index](hidden)

    def merge(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.merger(hidden)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> VisionOutput:
        positions = self.patch_positions(grid_thw.to(pixel_values.device))
        hidden = self.embed_patches(pixel_values)
        hidden = hidden + self.position_embedding(positions, hidden.dtype)
        rotary = self.rotary_embedding(positions)
        deepstack = []
        for index in range(len(self.blocks)):
            hidden = self.run_block(index, hidden, positions, rotary)
            feature = self.deepstack_merge(index, hidden)
            if feature is not None:
                deepstack.append(feature)
        return VisionOutput(hidden, self.merge(hidden), deepstack, grid_thw)
