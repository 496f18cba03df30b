"""The Trace: one recorded run of the vision encoder, computed stage by stage, read by every view.

    tr = trace(encoder, preprocess([image]))
    tr.step()                 # computes the next stage only
    tr.run_to("blocks.5")     # … up to and including block 5
    tr.run()                  # … to the end; tr.output() equals encoder(pixel_values, grid_thw)
    tr.attention(5, head=3)   # [n, n] raster-order map, computed on demand from block 5's stored input

Stage math is the encoder's own stage methods; block sub-stages (norm1, attention, residual, norm2,
MLP, residual) are read by scoped forward hooks while the block's own `forward` runs. Keep policy
"blocks" (default) keeps each block's input/output and the small tensors and recomputes sub-stage
tensors when asked; "all" keeps them too. A failing stage leaves every earlier stage readable.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn

from qwen3vl_inspect import attention as attn_maps
from qwen3vl_inspect import breakpoints
from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.inputs.layout import merge_to_raster
from qwen3vl_inspect.model.encoder import VisionEncoder, VisionOutput
from qwen3vl_inspect.probe.numerics import NonFiniteReport, find_first_nonfinite
from qwen3vl_inspect.probe.tensors import TensorInspector
from qwen3vl_inspect.stage import Stage, StageError
from qwen3vl_inspect.teaching import explain
from qwen3vl_inspect.trace_attention import AttentionQueries

KEEP_POLICIES = ("blocks", "all")
SUBSTAGES = ("norm1", "attn", "residual1", "norm2", "mlp", "residual2")
SUBSTAGE_TITLES = dict(norm1="norm1", attn="attention", residual1="residual", norm2="norm2", mlp="MLP", residual2="residual")
DEFAULT_BUDGET = 4 * 2**30  # bytes for kept tensors, and for one attention request


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


@contextmanager
def _outputs_of(modules: dict[str, nn.Module], pre: dict[str, nn.Module]) -> Iterator[dict[str, torch.Tensor]]:
    """Collect the outputs of `modules` (and the first input of `pre`) during one call; hooks always removed."""
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out)) for n, m in modules.items()]
    handles += [m.register_forward_pre_hook(lambda _m, args, n=n: seen.__setitem__(n, args[0])) for n, m in pre.items()]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def stage_names_for(config: VisionConfig) -> list[str]:
    """A Trace's top-level stages for this config, in order; known before any model is built."""
    names = ["input", "patchify", "patch_embed", "pos_embed", "rotary"]
    for layer in range(config.depth):
        names.append(f"blocks.{layer}")
        if layer in config.deepstack_visual_indexes:
            names.append(f"deepstack.{config.deepstack_visual_indexes.index(layer)}")
    return names + ["merger"]


class Trace(AttentionQueries):
    def __init__(
        self,
        encoder: VisionEncoder,
        inputs: VisionInputs,
        keep: str = "blocks",
        memory_budget: int = DEFAULT_BUDGET,
        attention_budget: int = DEFAULT_BUDGET,
    ) -> None:
        if keep not in KEEP_POLICIES:
            raise ValueError(f"keep={keep!r}; choose one of {KEEP_POLICIES}")
        self.encoder, self.inputs, self.keep = encoder, inputs, keep
        self.memory_budget, self.attention_budget = memory_budget, attention_budget
        self.config = encoder.config
        parameter = next(encoder.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.grid_thw = inputs.grid_thw.to(self.device)
        self.stages: list[Stage] = []
        self.failure: StageError | None = None
        self._tensors: dict[str, torch.Tensor] = {}
        self._deepstack: list[torch.Tensor] = []
        self._attention_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._plan: list[tuple[str, Callable[[], Stage]]] = self._build_plan()
        pixels = int(inputs.grid_thw[:, 1:].prod(-1).sum()) * self.config.patch_size**2
        attn_maps.check_trace_budget(self.estimated_bytes(), memory_budget, pixels)

    # ---- plan & stepping -----------------------------------------------------------------------

    def _build_plan(self) -> list[tuple[str, Callable[[], Stage]]]:
        fixed = dict(input=self._input_stage, patchify=self._patchify_stage, patch_embed=self._patch_embed_stage,
                     pos_embed=self._pos_embed_stage, rotary=self._rotary_stage, merger=self._merger_stage)
        taps = self.config.deepstack_visual_indexes
        plan: list[tuple[str, Callable[[], Stage]]] = []
        for name in stage_names_for(self.config):
            kind, _, number = name.partition(".")
            if kind == "blocks":
                plan.append((name, lambda layer=int(number): self._block_stage(layer)))
            elif kind == "deepstack":
                plan.append((name, lambda index=int(number): self._deepstack_stage(index, taps[index])))
            else:
                plan.append((name, fixed[name]))
        return plan

    @property
    def stage_names(self) -> list[str]:
        """Every top-level stage in order, computed or not."""
        return [name for name, _ in self._plan]

    @property
    def done(self) -> bool:
        return len(self.stages) == len(self._plan)

    def step(self) -> Stage | None:
        """Compute the next stage; None when the run is complete. Raises StageError on failure."""
        if self.done:
            return None
        if self.failure is not None:
            raise self.failure
        name, compute = self._plan[len(self.stages)]
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                stage = compute()
        except (Exception, MemoryError) as exc:  # torch.OutOfMemoryError is an Exception
            self.failure = StageError(name, exc)
            raise self.failure from exc
        stage.seconds = time.perf_counter() - started
        self.stages.append(stage)
        breakpoints.check(self, stage)
        return stage

    def run_to(self, name: str) -> Stage:
        if name not in self.stage_names:
            raise InputError(f"no stage {name!r}; stages are: {', '.join(self.stage_names)}")
        while len(self.stages) <= self.stage_names.index(name):
            self.step()
        return self[name]

    def run(self) -> "Trace":
        while self.step() is not None:
            pass
        return self

    def __iter__(self) -> Iterator[Stage]:
        """Stages in order, computing each one as it is reached."""
        for index in range(len(self._plan)):
            if index >= len(self.stages):
                self.step()
            yield self.stages[index]

    def __getitem__(self, name: str) -> Stage:
        for stage in self.all_stages():
            if stage.name == name:
                return stage
        raise KeyError(f"stage {name!r} has not been computed (computed: {len(self.stages)} of {len(self._plan)})")

    def all_stages(self) -> list[Stage]:
        """Computed stages with block sub-stages flattened in after their block."""
        return [s for stage in self.stages for s in (stage, *stage.substages)]

    def output(self) -> VisionOutput:
        self.run()
        return VisionOutput(self._tensors["blocks.last"], self._tensors["merger"], list(self._deepstack), self.grid_thw)

    # ---- the stages --------------------------------------------------------------------------------

    def _record(self, name: str, kind: str, title: str, inputs: list[torch.Tensor | tuple[int, ...]],
                out: torch.Tensor, module: str | None = None, layer: int | None = None, **numbers: Any) -> Stage:
        shapes = [t if isinstance(t, tuple) else _shape(t) for t in inputs]
        return Stage(
            name=name, kind=kind, title=title, input_shapes=shapes, output_shape=_shape(out),
            dtype=_dtype(out), known_stats=TensorInspector.inspect(name, out), layer=layer, module=module,
            explanation=explain(kind, **self._numbers(), layer=layer, **numbers),
        )

    def _numbers(self) -> dict[str, Any]:
        c = self.config
        n = self.inputs.num_patches
        return dict(
            n=n, hidden=c.hidden_size, heads=c.num_heads, head_dim=c.head_dim, mlp=c.intermediate_size, depth=c.depth,
            side=c.num_grid_per_side, patch_dim=c.patch_dim, out=c.out_hidden_size, merged=n // c.merge_unit,
            merged_width=c.hidden_size * c.merge_unit, factor=c.patch_size * c.spatial_merge_size,
            grids=", ".join("×".join(str(v) for v in g) for g in self.grid_thw.tolist()),
        )

    def _resized_shapes(self) -> list[tuple[int, ...]]:
        p = self.config.patch_size
        return [(t * self.config.temporal_patch_size if t > 1 else 1, h * p, w * p, 3) for t, h, w in self.grid_thw.tolist()]

    def _input_stage(self) -> Stage:
        """Pixels in (frames, H, W, RGB): originals → resized to multiples of 32."""
        sizes = ", ".join(f"{w}×{h}" for h, w in self.inputs.original_sizes)
        resized = ", ".join(f"{s[2]}×{s[1]}" for s in self._resized_shapes())
        return Stage("input", "input", "input & resize", [(1, h, w, 3) for h, w in self.inputs.original_sizes],
                     self._resized_shapes()[0], "uint8", explain("input", **self._numbers(), sizes=sizes, resized=resized))

    def _patchify_stage(self) -> Stage:
        pixels = self.inputs.pixel_values.to(self.device)
        self._tensors["patchify"] = pixels
        self._positions = self.encoder.patch_positions(self.grid_thw)
        return self._record("patchify", "patchify", "patchify", self._resized_shapes()[:1], pixels)

    def _patch_embed_stage(self) -> Stage:
        pixels = self._tensors["patchify"]
        hidden = self.encoder.embed_patches(pixels)
        self._tensors["patch_embed"] = hidden
        return self._record("patch_embed", "patch_embed", "patch embedding", [pixels], hidden, "patch_embed")

    def _pos_embed_stage(self) -> Stage:
        hidden = self._tensors["patch_embed"]
        self._tensors["pos_embed.table"] = self.encoder.position_embedding(self._positions, hidden.dtype)
        out = hidden + self._tensors["pos_embed.table"]
        self._tensors["pos_embed"] = self._tensors["blocks.0.input"] = out
        return self._record("pos_embed", "pos_embed", "position embedding", [hidden], out, "pos_embed")

    def _rotary_stage(self) -> Stage:
        self._rotary = self.encoder.rotary_embedding(self._positions)
        self._tensors["rotary"] = self._rotary[0]
        return self._record("rotary", "rotary", "rotary embedding", [self._positions.rotary_ids], self._rotary[0],
                            "rotary ids")

    def _block_stage(self, layer: int) -> Stage:
        x = self._tensors[f"blocks.{layer}.input"]
        if self.keep == "all":
            out, parts = self._run_block(layer, x)
            self._tensors.update({f"blocks.{layer}.{sub}": t for sub, t in parts.items()})
        else:
            out = self.encoder.run_block(layer, x, self._positions, self._rotary)
        self._tensors[f"blocks.{layer + 1}.input"] = self._tensors["blocks.last"] = out
        taps = self.config.deepstack_visual_indexes
        tap_text = f" Its output also feeds DeepStack merger {taps.index(layer)}." if layer in taps else ""
        stage = self._record(f"blocks.{layer}", "block", f"block {layer}", [x], out, f"blocks.{layer}", layer,
                             tap_text=tap_text)
        stage.substages = self._substages(layer, x, out)
        return stage

    def _substages(self, layer: int, x: torch.Tensor, out: torch.Tensor) -> list[Stage]:
        """norm1 → attention → residual → norm2 → MLP → residual; every one is [N, hidden] like the block.

        Their stats are computed on first read, all six from one recomputation of the block.
        """
        modules = dict(norm1="norm1", attn="attn", norm2="norm2", mlp="mlp")
        computed: dict[str, Any] = {}

        def stats_of(sub: str):
            if not computed:
                for name, tensor in self._block_parts(layer).items():
                    computed[name] = TensorInspector.inspect(f"blocks.{layer}.{name}", tensor)
            return computed[sub]

        return [
            Stage(f"blocks.{layer}.{sub}", sub, f"block {layer} · {SUBSTAGE_TITLES[sub]}", [_shape(x)], _shape(out),
                  _dtype(out), explain(sub, **self._numbers(), layer=layer), layer=layer,
                  module=f"blocks.{layer}.{modules[sub]}" if sub in modules else None,
                  stats_source=lambda sub=sub: stats_of(sub))
            for sub in SUBSTAGES
        ]

    def _block_parts(self, layer: int) -> dict[str, torch.Tensor]:
        """The six sub-stage tensors of block `layer`: stored (keep="all") or recomputed from its input."""
        if self.keep == "all":
            return {sub: self._tensors[f"blocks.{layer}.{sub}"] for sub in SUBSTAGES}
        with torch.inference_mode():
            return self._run_block(layer, self._tensors[f"blocks.{layer}.input"])[1]

    def _run_block(self, layer: int, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run block `layer` through its own forward, reading the sub-stage tensors with hooks."""
        block = self.encoder.blocks[layer]
        with _outputs_of(dict(norm1=block.norm1, attn=block.attn, norm2=block.norm2, mlp=block.mlp),
                         pre=dict(residual1=block.norm2)) as parts:
            out = self.encoder.run_block(layer, x, self._positions, self._rotary)
        return out, {**parts, "residual2": out}

    def _deepstack_stage(self, index: int, layer: int) -> Stage:
        hidden = self._tensors[f"blocks.{layer + 1}.input"]
        feature = self.encoder.deepstack_merge(layer, hidden)
        self._deepstack.append(feature)
        self._tensors[f"deepstack.{index}"] = feature
        return self._record(f"deepstack.{index}", "deepstack", f"DeepStack merger {index} (block {layer})", [hidden],
                            feature, f"deepstack_merger_list.{index}", layer, index=index)

    def _merger_stage(self) -> Stage:
        hidden = self._tensors["blocks.last"]
        merged = self.encoder.merge(hidden)
        self._tensors["merger"] = merged
        return self._record("merger", "merger", "patch merger", [hidden], merged, "merger")

    # ---- tensors on demand ---------------------------------------------------------------------------

    def tensor(self, name: str) -> torch.Tensor:
        """Output tensor of a computed stage; block sub-stages are recomputed from the block input if not kept."""
        self[name]  # raises KeyError if not computed
        if name.startswith("blocks.") and name.count(".") == 1:
            return self._tensors[f"blocks.{int(name.split('.')[1]) + 1}.input"]
        if name in self._tensors:
            return self._tensors[name]
        if name.startswith("blocks."):
            _, layer, sub = name.split(".")
            return self._block_parts(int(layer))[sub]
        raise KeyError(f"stage {name!r} has no tensor")

    def block_input(self, layer: int) -> torch.Tensor:
        if f"blocks.{layer}" not in [s.name for s in self.stages]:
            self.run_to(f"blocks.{layer}")
        return self._tensors[f"blocks.{layer}.input"]

    def patch_norms(self, name: str, image: int = 0, frame: int = 0) -> torch.Tensor:
        """L2 norm of each token's vector at stage `name`, laid out on the image grid (raster order)."""
        values = self.tensor(name).float()
        merged = values.shape[0] * self.config.merge_unit == self.inputs.num_patches
        norms = values.norm(dim=-1)
        if merged:  # merger outputs are already in merged-grid raster order
            grid = self.grid_thw // torch.tensor([1, self.config.spatial_merge_size, self.config.spatial_merge_size],
                                                 device=self.grid_thw.device)
            segment = attn_maps.find_segment(grid, image, frame)
            return norms[segment.start:segment.end].reshape(segment.grid_h, segment.grid_w)  # (h/2, w/2)
        raster = merge_to_raster(norms, self.grid_thw, self.config.spatial_merge_size)
        segment = attn_maps.find_segment(self.grid_thw, image, frame)
        return raster[segment.start:segment.end].reshape(segment.grid_h, segment.grid_w)  # (h, w)

    def estimated_bytes(self) -> int:
        """Bytes the kept tensors will take for this input (the weights are not counted)."""
        n, c = self.inputs.num_patches, self.config
        width = torch.finfo(self.dtype).bits // 8
        per_hidden = n * c.hidden_size * width
        kept_per_block = per_hidden * (7 if self.keep == "all" else 1) + (n * c.intermediate_size * width if self.keep == "all" else 0)
        merged = n // c.merge_unit * c.out_hidden_size * width * (1 + len(c.deepstack_visual_indexes))
        return n * c.patch_dim * 4 + 3 * per_hidden + 2 * n * c.head_dim * 4 + c.depth * kept_per_block + merged

    # ---- summaries ------------------------------------------------------------------------------------

    def first_nonfinite(self) -> Stage | None:
        """The first computed stage whose output holds NaN/Inf (top-level; see its substages for detail)."""
        return next((s for s in self.stages if s.nonfinite), None)

    def locate_nonfinite(self) -> tuple[Stage, str, NonFiniteReport | None] | None:
        """The first stage with NaN/Inf and the innermost module that produced it.

        Re-runs only that stage's module from its stored input with the probe's NaN finder, so the
        answer is a module path like `blocks.7.mlp.linear_fc1`, not just a stage.
        """
        bad = next((s for s in self.stages if s.nonfinite), None)
        if bad is None:
            return None
        module, args = self._stage_call(bad)
        if module is None:
            return bad, bad.module or bad.name, None
        with torch.inference_mode():
            report = find_first_nonfinite(module, *args)
        if report is None:
            return bad, bad.module or bad.name, None
        path = ".".join(p for p in (bad.module, report.module_name) if p)
        return bad, path, report

    def _stage_call(self, stage: Stage) -> tuple[nn.Module | None, tuple]:
        """The module that computes a top-level stage, and its stored inputs."""
        if stage.kind == "block":
            layer = stage.layer
            return self.encoder.blocks[layer], (self._tensors[f"blocks.{layer}.input"], self._positions.cu_seqlens, self._rotary)
        if stage.kind == "deepstack":
            index = int(stage.name.split(".")[1])
            return self.encoder.deepstack_merger_list[index], (self._tensors[f"blocks.{stage.layer + 1}.input"],)
        if stage.kind == "merger":
            return self.encoder.merger, (self._tensors["blocks.last"],)
        if stage.kind == "patch_embed":
            return self.encoder.patch_embed, (self._tensors["patchify"],)
        if stage.kind == "pos_embed":
            return self.encoder.pos_embed, (self._positions.interp_indices,)
        return None, ()

    def _repr_html_(self) -> str:
        from qwen3vl_inspect.render.html import trace_html

        return trace_html(self)

    def summary(self) -> dict[str, Any]:
        bad = self.first_nonfinite()
        return {
            "model": self.config.source,
            "weights": self.encoder.weights_source,
            "grid_thw": self.grid_thw.tolist(),
            "dtype": _dtype(next(self.encoder.parameters())),
            "computed": len(self.stages),
            "total": len(self._plan),
            "failure": None if self.failure is None else str(self.failure),
            "first_nonfinite": None if bad is None else {"stage": bad.name, "module": bad.module},
            "stages": [s.to_dict() for s in self.stages],
        }


def trace(
    encoder: VisionEncoder,
    inputs: VisionInputs,
    keep: str = "blocks",
    memory_budget: int = DEFAULT_BUDGET,
    attention_budget: int = DEFAULT_BUDGET,
) -> Trace:
    """A lazy Trace of `encoder` over `inputs` (what `preprocess` returns); nothing runs until stepped.

    Budgets (bytes) bound the kept tensors and any single attention request; over them, a clear
    InputError suggests a smaller max_pixels before anything is computed.
    """
    return Trace(encoder, inputs, keep, memory_budget, attention_budget)
