"""Finding tensors inside arbitrary module inputs/outputs, and modules by (glob) name.

Probes must work on *any* `nn.Module`: ours returns a dataclass, transformers returns
`ModelOutput`s (dict and dataclass at once), tuples of `(hidden, weights)`, `(cos, sin)` pairs,
caches. Walking those generically, in one place, is what keeps hooks, the NaN finder and the
shape tracer model-agnostic.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import torch
from torch import nn

MAX_DEPTH = 6  # deeper nesting than this is a cache or a config object, not activations

GLOB_CHARS = "*?["


def _children(obj: Any, prefix: str) -> list[tuple[str, Any]] | None:
    """Labelled children of a container, or None if `obj` is not one we look into."""
    if isinstance(obj, Mapping):  # dict, BatchFeature, ModelOutput (checked before dataclass)
        return [(f"{prefix}.{key}" if prefix else str(key), value) for key, value in obj.items()]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f"{prefix}.{f.name}" if prefix else f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if isinstance(obj, (list, tuple)):
        return [(f"{prefix}[{i}]", value) for i, value in enumerate(obj)]
    return None


def iter_tensors(obj: Any, prefix: str = "", leaf_types: tuple[type, ...] = (torch.Tensor,)) -> Iterator[tuple[str, Any]]:
    """Yield `(label, tensor)` for every tensor nested in `obj`, in a stable order.

    Labels read like Python access paths (`output[0]`, `output.last_hidden_state`), so a
    user can go from a table row back to the object. `leaf_types` lets display code collect
    numpy arrays too.
    """
    seen: set[int] = set()

    def walk(item: Any, label: str, depth: int) -> Iterator[tuple[str, Any]]:
        if isinstance(item, leaf_types):
            yield label, item
            return
        if depth >= MAX_DEPTH or id(item) in seen:
            return
        children = _children(item, label)
        if children is None:
            return
        seen.add(id(item))
        for child_label, child in children:
            yield from walk(child, child_label, depth + 1)

    yield from walk(obj, prefix, 0)


def iter_call_tensors(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors a module was called with: positional as `input[i]`, keywords by their name
    (transformers passes most activations as keywords, e.g. `hidden_states=`)."""
    for index, arg in enumerate(args):
        yield from iter_tensors(arg, f"input[{index}]")
    for key, value in kwargs.items():
        yield from iter_tensors(value, key)


def replace_first_tensor(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[Any, bool]:
    """Return `obj` with its first floating tensor replaced by `fn(tensor)`; (new_obj, replaced?).

    Used to alter a module's output from a forward hook without touching the original tensor,
    which may alias the module's input or a parameter.
    """
    if isinstance(obj, torch.Tensor):
        return (fn(obj), True) if obj.is_floating_point() or obj.is_complex() else (obj, False)
    if isinstance(obj, MutableMapping):
        for key, value in list(obj.items()):
            new, done = replace_first_tensor(value, fn)
            if done:
                obj[key] = new  # ModelOutput / dict returned by this call: a fresh object, safe to update
                return obj, True
        return obj, False
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            new, done = replace_first_tensor(getattr(obj, f.name), fn)
            if done:
                return dataclasses.replace(obj, **{f.name: new}), True
        return obj, False
    if isinstance(obj, (list, tuple)):
        items = list(obj)
        for index, value in enumerate(items):
            new, done = replace_first_tensor(value, fn)
            if done:
                items[index] = new
                if isinstance(obj, list):
                    return items, True
                return (type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)), True
    return obj, False


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in GLOB_CHARS)


def resolve_module_names(model: nn.Module, patterns: str | Sequence[str]) -> list[str]:
    """Module paths matching exact names or globs (see `glob_match`), in definition order.

    A pattern that matches nothing is retried as a dotted suffix (`visual.blocks.0` finds
    `model.visual.blocks.0`, where transformers 5 nests the tower), because seed scripts were
    written against the older layout. Still nothing → ValueError naming the closest paths.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    names = [name for name, _ in model.named_modules()]
    chosen: set[str] = set()
    for pattern in patterns:
        matches = _match(names, pattern)
        if not matches:
            matches = _match(names, "**." + pattern) if pattern else []
        if not matches:
            raise ValueError(no_match_message(names, pattern))
        chosen.update(matches)
    return [name for name in names if name in chosen]


def _match(names: list[str], pattern: str) -> list[str]:
    if is_glob(pattern):
        return [name for name in names if glob_match(name, pattern)]
    return [name for name in names if name == pattern]


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """fnmatch syntax over dotted paths: `*`/`?` stay inside one component, `**` spans any."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        ch = pattern[i]
        if ch == "*":
            out += "[^.]*"
        elif ch == "?":
            out += "[^.]"
        elif ch == "[":
            j = i + 1
            j += pattern[j : j + 1] == "!"
            j += pattern[j : j + 1] == "]"
            end = pattern.find("]", j)
            if end < 0:  # no closing bracket: a literal "[", as in fnmatch
                out += re.escape(ch)
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out)


def glob_match(name: str, pattern: str) -> bool:
    """`blocks.*.attn` matches `blocks.3.attn`, `blocks.*` the blocks but not their children
    (plain fnmatch would let `*` cross dots and hook every submodule); `blocks.**` all of them."""
    return _glob_regex(pattern).fullmatch(name) is not None


def no_match_message(names: list[str], pattern: str) -> str:
    """"no module 'x'; did you mean: a, b" with difflib's nearest paths (globs compared with `*`→`0`)."""
    probe = pattern.replace("*", "0").replace("?", "0")
    close = difflib.get_close_matches(probe, [n for n in names if n], n=5, cutoff=0.5)
    if not close:  # try the last component alone: users often remember the leaf name only
        leaf = probe.rsplit(".", 1)[-1]
        close = [n for n in names if n.rsplit(".", 1)[-1] == leaf][:5]
    hint = f"; did you mean: {', '.join(close)}" if close else "; see model.named_modules() for valid paths"
    return f"no module matches {pattern!r}{hint}"


def get_module(model: nn.Module, name: str) -> nn.Module:
    """`model.get_submodule(name)` with the same helpful error as `resolve_module_names`."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(no_match_message([n for n, _ in model.named_modules()], name)) from None
