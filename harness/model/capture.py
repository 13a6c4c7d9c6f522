"""Observe named intermediates, named by the official PyTorch module path.

Modules call `tap(self, x)` on their output. When no recorder is active this is one list
check; inside `recording()` the tensor is kept (in the official torch layout, so a golden,
a first-divergence row and a weight share one name). `set_paths(model)` stamps every
module with its dotted path once, after the model is built.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import mlx.core as mx
import mlx.nn as nn

_recorders: list["Recorder"] = []
_step: list[int] = [0]  # sampler step whose DiT call is running (0 outside sampling)


class Recorder:
    def __init__(self, keep: Callable[[str], bool] | None = None):
        self.keep = keep
        self.tensors: dict[str, mx.array] = {}  # insertion order = execution order

    def add(self, name: str, x: mx.array) -> None:
        if self.keep is not None and not self.keep(name):
            return
        # First occurrence wins (a mutant that calls a module twice is recorded at its
        # first call); the DiT's steps are told apart by `sampler_step`.
        self.tensors.setdefault(name, x)


@contextmanager
def recording(keep: Callable[[str], bool] | None = None) -> Iterator[Recorder]:
    rec = Recorder(keep)
    _recorders.append(rec)
    try:
        yield rec
    finally:
        _recorders.remove(rec)


@contextmanager
def sampler_step(i: int) -> Iterator[None]:
    """Names tapped inside are those of sampler step i: `<path>@<i>` for i >= 1, so the DiT's
    intermediates of every step have their own name (step 0 keeps the bare path)."""
    old, _step[0] = _step[0], i
    try:
        yield
    finally:
        _step[0] = old


def name_of(module_or_name, suffix: str | None = None) -> str:
    """The recorded name: official module path (or a given name), `.suffix`, `@step`."""
    name = module_or_name if isinstance(module_or_name, str) else module_or_name._path
    if suffix:
        name = f"{name}.{suffix}"
    return f"{name}@{_step[0]}" if _step[0] else name


def recording_active() -> bool:
    return bool(_recorders)


def tap(module_or_name, x: mx.array, suffix: str | None = None, channels_last: bool = False):
    """Record `x` under the module's path (plus `.suffix`); returns x unchanged.

    channels_last: x is (B, T, C) in a place where PyTorch holds (B, C, T) (conv stacks).
    """
    if _recorders:
        name = name_of(module_or_name, suffix)
        y = x.swapaxes(1, 2) if channels_last else x
        for rec in _recorders:
            rec.add(name, y)
    return x


def set_paths(model: nn.Module, prefix: str = "") -> None:
    for name, module in model.named_modules():
        module._path = f"{prefix}{name}" if name else prefix.rstrip(".")
