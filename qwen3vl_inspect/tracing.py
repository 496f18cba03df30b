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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from qwen3vl_inspect import attention_maps, breakpoints
from qwen3vl_inspect.attention_store import HEAD, MEAN, ROLLOUT, AttentionStore, check_request
from qwen3vl_inspect.config import VisionConfig
from qwen3vl_inspect.errors import InputError
from qwen3vl_inspect.inputs.image import VisionInputs
from qwen3vl_inspect.inputs.layout import merge_to_raster
from qwen3vl_inspect.inputs.processor_config import check_fits
from qwen3vl_inspect.model.encoder import VisionEncoder, VisionOutput
from qwen3vl_inspect.model.stage_plan import PlannedStage, block_steps, stage_plan
from qwen3vl_inspect.probe.numerics import NonFiniteReport, find_first_nonfinite
from qwen3vl_inspect.probe.tensors import TensorInspector, TensorStats
from qwen3vl_inspect.stage import Stage, StageError
from qwen3vl_inspect.stage_name import BLOCK_STEPS, StageName
from qwen3vl_inspect.teaching import explain

KEEP_POLICIES = ("blocks", "all")
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


def _fill_step_stats(block: Stage, parts: dict[str, torch.Tensor]) -> None:
    for step in block.substages:
        step.stats = TensorInspector.inspect(step.name, parts[step.kind])


def stage_names_for(config: VisionConfig) -> list[str]:
    """A Trace's top-level stages for this config, in order; known before any model is built."""
    return [str(planned.name) for planned in stage_plan(config)]


class Trace:
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
        check_fits(encoder.config, inputs.patch_size, inputs.merge_size, inputs.temporal_patch_size,
                   int(inputs.pixel_values.shape[-1]))
        self.encoder, self.inputs, self.keep = encoder, inputs, keep
        self.memory_budget, self.attention_budget = memory_budget, attention_budget
        self.config = encoder.config
        parameter = next(encoder.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.grid_thw = inputs.grid_thw.to(self.device)
        self.stages: list[Stage] = []
        self.failure: StageError | None = None
        self.stop_in_debugger = True  # QWEN3VL_INSPECT_BREAK calls breakpoint(); the TUI turns this off (see breakpoints.py)
        self._tensors: dict[str, torch.Tensor] = {}
        self._deepstack: list[torch.Tensor] = []
        self.attention_store = AttentionStore(self._head_probabilities, self.config.num_heads, attention_budget)
        self._plan: list[PlannedStage] = stage_plan(self.config)
        pixels = int(inputs.grid_thw[:, 1:].prod(-1).sum()) * self.config.patch_size**2
        attention_maps.check_trace_budget(self.estimated_bytes(), memory_budget, pixels)

    # ---- plan & stepping -----------------------------------------------------------------------

    @property
    def stage_names(self) -> list[str]:
        """Every top-level stage in order, computed or not."""
        return [str(planned.name) for planned in self._plan]

    @property
    def done(self) -> bool:
        return len(self.stages) == len(self._plan)

    def step(self) -> Stage | None:
        """Compute the next stage; None when the run is complete. Raises StageError on failure."""
        if self.done:
            return None
        if self.failure is not None:
            raise self.failure
        planned = self._plan[len(self.stages)]
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                stage = self._compute(planned)
        except (Exception, MemoryError) as exc:  # torch.OutOfMemoryError is an Exception
            self.failure = StageError(str(planned.name), exc)
            raise self.failure from exc
        stage.seconds = time.perf_counter() - started
        self.stages.append(stage)
        breakpoints.check(self, stage)
        return stage

    def run_to(self, name: str | StageName) -> Stage:
        """Compute up to and including `name` (a block step runs its block); returns that stage."""
        top = str(StageName.parse(name).top)
        if top not in self.stage_names:
            raise InputError(f"no stage {str(name)!r}; stages are: {', '.join(self.stage_names)}")
        while len(self.stages) <= self.stage_names.index(top):
            self.step()
        return self[str(name)]

    def run(self) -> Trace:
        while self.step() is not None:
            pass
        return self

    def __iter__(self) -> Iterator[Stage]:
        """Stages in order, computing each one as it is reached."""
        for index in range(len(self._plan)):
            if index >= len(self.stages):
                self.step()
            yield self.stages[index]

    def __getitem__(self, name: str | StageName) -> Stage:
        name = str(name)
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

    def _compute(self, planned: PlannedStage) -> Stage:
        """Run one planned stage through the encoder's stage method its kind names."""
        name = planned.name
        if planned.kind == "block":
            return self._block_stage(name.block_number)
        if planned.kind == "deepstack":
            index = name.deepstack_number
            return self._deepstack_stage(index, self.config.deepstack_visual_indexes[index])
        return getattr(self, f"_{planned.kind}_stage")()

    def _record(self, name: StageName, kind: str, inputs: Sequence[torch.Tensor | tuple[int, ...]],
                out: torch.Tensor, **numbers: Any) -> Stage:
        shapes = [t if isinstance(t, tuple) else _shape(t) for t in inputs]
        return Stage(
            name=str(name), kind=kind, title=name.title(self.config), input_shapes=shapes, output_shape=_shape(out),
            dtype=_dtype(out), stats=TensorInspector.inspect(str(name), out), layer=name.layer, module=name.module,
            explanation=explain(kind, **self._numbers(), layer=name.layer, **numbers),
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
        return Stage("input", "input", StageName("input").title(), [(1, h, w, 3) for h, w in self.inputs.original_sizes],
                     self._resized_shapes()[0], "uint8", explain("input", **self._numbers(), sizes=sizes, resized=resized))

    def _patchify_stage(self) -> Stage:
        pixels = self.inputs.pixel_values.to(self.device)
        self._tensors["patchify"] = pixels
        self._positions = self.encoder.patch_positions(self.grid_thw)
        return self._record(StageName("patchify"), "patchify", self._resized_shapes()[:1], pixels)

    def _patch_embed_stage(self) -> Stage:
        pixels = self._tensors["patchify"]
        hidden = self.encoder.embed_patches(pixels)
        self._tensors["patch_embed"] = hidden
        return self._record(StageName("patch_embed"), "patch_embed", [pixels], hidden)

    def _pos_embed_stage(self) -> Stage:
        hidden = self._tensors["patch_embed"]
        self._tensors["pos_embed.table"] = self.encoder.position_embedding(self._positions, hidden.dtype)
        out = hidden + self._tensors["pos_embed.table"]
        self._tensors["pos_embed"] = self._tensors["blocks.0.input"] = out
        return self._record(StageName("pos_embed"), "pos_embed", [hidden], out)

    def _rotary_stage(self) -> Stage:
        self._rotary = self.encoder.rotary_embedding(self._positions)
        self._tensors["rotary"] = self._rotary[0]
        return self._record(StageName("rotary"), "rotary", [self._positions.rotary_ids], self._rotary[0])

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
        stage = self._record(StageName.block(layer), "block", [x], out, tap_text=tap_text)
        stage.substages = [
            Stage(str(step), step.block_step, step.title(), [_shape(x)], _shape(out), _dtype(out),
                  explain(step.block_step, **self._numbers(), layer=layer), layer=layer, module=step.module)
            for step in block_steps(layer)
        ]
        if self.keep == "all":  # the tensors are at hand: their stats cost no recomputation
            _fill_step_stats(stage, self._block_parts(layer))
        return stage

    def compute_step_stats(self, layer: int) -> None:
        """Fill in the stats of block `layer`'s six steps. Unless keep="all", this runs the block once
        more from its stored input: an explicit call, never a side effect of reading a Stage."""
        block = self[StageName.block(layer)]
        if all(step.stats is not None for step in block.substages):
            return
        _fill_step_stats(block, self._block_parts(layer))

    def stats(self, name: str | StageName) -> TensorStats | None:
        """The stats of a computed stage, computing a block step's on first request (see compute_step_stats)."""
        stage = self[name]
        if stage.stats is None and stage.kind in BLOCK_STEPS:
            self.compute_step_stats(StageName.parse(stage.name).block_number)
        return stage.stats

    def _block_parts(self, layer: int) -> dict[str, torch.Tensor]:
        """The six sub-stage tensors of block `layer`: stored (keep="all") or recomputed from its input."""
        if self.keep == "all":
            return {sub: self._tensors[f"blocks.{layer}.{sub}"] for sub in BLOCK_STEPS}
        with torch.inference_mode():
            return self._run_block(layer, self._tensors[f"blocks.{layer}.input"])[1]

    def _run_block(self, layer: int, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run block `layer` through its own forward, reading the sub-stage tensors with hooks."""
        block = self.encoder.block(layer)
        with _outputs_of(dict(norm1=block.norm1, attn=block.attn, norm2=block.norm2, mlp=block.mlp),
                         pre=dict(residual1=block.norm2)) as parts:
            out = self.encoder.run_block(layer, x, self._positions, self._rotary)
        return out, {**parts, "residual2": out}

    def _deepstack_stage(self, index: int, layer: int) -> Stage:
        hidden = self._tensors[f"blocks.{layer + 1}.input"]
        feature = self.encoder.deepstack_feature(index, hidden)
        self._deepstack.append(feature)
        self._tensors[f"deepstack.{index}"] = feature
        stage = self._record(StageName.deepstack(index), "deepstack", [hidden], feature, index=index)
        stage.layer = layer  # the block it taps
        return stage

    def _merger_stage(self) -> Stage:
        hidden = self._tensors["blocks.last"]
        merged = self.encoder.merge(hidden)
        self._tensors["merger"] = merged
        return self._record(StageName("merger"), "merger", [hidden], merged)

    # ---- tensors on demand ---------------------------------------------------------------------------

    def tensor(self, name: str | StageName) -> torch.Tensor:
        """Output tensor of a computed stage; block sub-stages are recomputed from the block input if not kept."""
        self[name]  # raises KeyError if not computed
        parsed = StageName.parse(name)
        if parsed.kind == "block":
            return self._tensors[f"blocks.{parsed.block_number + 1}.input"]
        if str(parsed) in self._tensors:
            return self._tensors[str(parsed)]
        if parsed.kind == "step":
            return self._block_parts(parsed.block_number)[parsed.step or ""]
        raise KeyError(f"stage {str(name)!r} has no tensor")

    def block_input(self, layer: int) -> torch.Tensor:
        if len(self.stages) <= self.stage_names.index(str(StageName.block(layer))):
            self.run_to(StageName.block(layer))
        return self._tensors[f"blocks.{layer}.input"]

    def patch_norms(self, name: str, image: int = 0, frame: int = 0) -> torch.Tensor:
        """L2 norm of each token's vector at stage `name`, laid out on the image grid (raster order)."""
        values = self.tensor(name).float()
        merged = values.shape[0] * self.config.merge_unit == self.inputs.num_patches
        norms = values.norm(dim=-1)
        if merged:  # merger outputs are already in merged-grid raster order
            grid = self.grid_thw // torch.tensor([1, self.config.spatial_merge_size, self.config.spatial_merge_size],
                                                 device=self.grid_thw.device)
            segment = attention_maps.find_segment(grid, image, frame)
            return norms[segment.start:segment.end].reshape(segment.grid_h, segment.grid_w)  # (h/2, w/2)
        raster = merge_to_raster(norms, self.grid_thw, self.config.spatial_merge_size)
        segment = attention_maps.find_segment(self.grid_thw, image, frame)
        return raster[segment.start:segment.end].reshape(segment.grid_h, segment.grid_w)  # (h, w)

    def estimated_bytes(self) -> int:
        """Bytes the kept tensors will take for this input (the weights are not counted)."""
        n, c = self.inputs.num_patches, self.config
        width = torch.finfo(self.dtype).bits // 8
        per_hidden = n * c.hidden_size * width
        keep_all = self.keep == "all"
        kept_per_block = per_hidden * (7 if keep_all else 1) + (n * c.intermediate_size * width if keep_all else 0)
        merged = n // c.merge_unit * c.out_hidden_size * width * (1 + len(c.deepstack_visual_indexes))
        return n * c.patch_dim * 4 + 3 * per_hidden + 2 * n * c.head_dim * 4 + c.depth * kept_per_block + merged

    # ---- attention, on demand (held by `attention_store` under one byte budget) ---------------------

    def _segment(self, layer: int, head: int | None, image: int, frame: int) -> attention_maps.Segment:
        if not 0 <= layer < self.config.depth:
            raise InputError(f"layer {layer} does not exist: blocks are numbered 0..{self.config.depth - 1}")
        if head is not None and not 0 <= head < self.config.num_heads:
            raise InputError(f"head {head} does not exist: heads are numbered 0..{self.config.num_heads - 1}")
        return attention_maps.find_segment(self.grid_thw, image, frame)

    def _head_probabilities(self, layer: int, heads: list[int], segment: attention_maps.Segment) -> torch.Tensor:
        """(len(heads), n, n) float32, raster order, from block `layer`'s stored input (run up to it if needed)."""
        hidden = self.block_input(layer)
        return attention_maps.layer_probabilities(self.encoder.block(layer), hidden, self._rotary, segment, heads,
                                                  self.config.spatial_merge_size)

    def attention(self, layer: int, head: int | None = None, image: int = 0, frame: int = 0) -> torch.Tensor:
        """Attention probabilities of block `layer` for one image (frame), raster order, float32.

        [heads, n, n], or [n, n] for one head. Rows sum to 1.
        """
        segment = self._segment(layer, head, image, frame)
        store = self.attention_store
        with torch.inference_mode():
            return store.heads(layer, segment) if head is None else store.head(layer, head, segment)

    def head_mean_attention(self, layer: int, image: int = 0, frame: int = 0) -> torch.Tensor:
        """[n, n] mean over heads, computed one head at a time so at most one head's map is extra."""
        with torch.inference_mode():
            return self.attention_store.mean(layer, self._segment(layer, None, image, frame))

    def rollout(self, layer: int | None = None, image: int = 0, frame: int = 0) -> torch.Tensor:
        """Attention rollout from block 0 up to `layer` (default: the last), raster order, [n, n]."""
        last = self.config.depth - 1 if layer is None else layer
        with torch.inference_mode():
            return self.attention_store.rollout(last, self._segment(last, None, image, frame))

    def head_summary(self, layer: int, image: int = 0, frame: int = 0) -> dict[str, Any]:
        """Per-head entropy and mean attention distance (patches), and the layer's sink patches."""
        with torch.inference_mode():
            return self.attention_store.summary(layer, self._segment(layer, None, image, frame))

    def attention_at_hand(self, layer: int, head: int | None = None, rollout: bool = False,
                          image: int = 0, frame: int = 0) -> bool:
        """True when that map is answered from memory (no computation)."""
        segment = self._segment(layer, head, image, frame)
        what = ROLLOUT if rollout else MEAN if head is None else HEAD
        return self.attention_store.holds(what, layer, segment, head)

    def check_attention_request(self, layer: int, head: int | None = None, rollout: bool = False,
                                image: int = 0, frame: int = 0) -> None:
        """Refuse, before anything runs, a map whose peak memory would pass the attention budget."""
        segment = self._segment(layer, head, image, frame)
        what = ROLLOUT if rollout else MEAN if head is None else HEAD
        check_request(what, segment.size, self.config.num_heads, self.attention_budget, self.config.patch_size)

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

    def _stage_call(self, stage: Stage) -> tuple[nn.Module | None, tuple[Any, ...]]:
        """The module that computes a top-level stage, and its stored inputs."""
        name = StageName.parse(stage.name)
        if stage.kind == "block":
            layer = name.block_number
            return self.encoder.block(layer), (self._tensors[f"blocks.{layer}.input"], self._positions.cu_seqlens, self._rotary)
        if stage.kind == "deepstack":
            index = name.deepstack_number
            tapped = self.config.deepstack_visual_indexes[index]
            return self.encoder.deepstack_merger_list[index], (self._tensors[f"blocks.{tapped + 1}.input"],)
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
