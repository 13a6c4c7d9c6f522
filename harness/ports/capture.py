"""Generic per-layer capture for ports: a `ModuleMap` -> intermediates under official names.

A port author maps their module paths to official ones; this records each mapped module's
output during a stage (first call wins, as the goldens record the DiT at sampler step 0) and,
given golden tensors, replaces the output with the golden's (teacher forcing: every module runs
on the reference's input to it, which tells a local fault from an inherited one).

- MLX (`framework="mlx"`): `mlx.nn.Module.__call__` is looked up on the class, so each mapped
  instance is switched for the duration to a subclass whose `__call__` wraps the original.
- torch (`framework="torch"`): forward hooks (a hook's return value replaces the output).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from harness.ports.protocol import Layout, ModuleMap


def to_official(y: np.ndarray, layout: Layout) -> np.ndarray:
    if layout is None:
        return y
    if layout == "channels_last":
        return np.swapaxes(y, 1, 2)
    if callable(layout):
        return np.asarray(layout(y))
    raise ValueError(f"unknown layout {layout!r} (use 'channels_last' or a function)")


def to_port(ref: np.ndarray, layout: Layout) -> np.ndarray | None:
    """The golden tensor in the port's layout; None where the layout cannot be inverted."""
    if layout is None:
        return ref
    if layout == "channels_last":
        return np.ascontiguousarray(np.swapaxes(ref, 1, 2))
    return None


def resolve(mm: ModuleMap, names) -> dict[str, tuple[object, str, Layout]]:
    """{port path: (module, official name, layout)} for the mapped modules in `names`."""
    wanted = set(names)
    found: dict[str, tuple[object, str, Layout]] = {}
    entries = {p: e for p, e in mm.entries().items() if e[0] in wanted}
    for prefix, root in mm.roots.items():
        for path, module in root.named_modules():
            full = ".".join(p for p in (prefix, path) if p)
            if full in entries:
                found[full] = (module, *entries[full])
    missing = sorted(set(entries) - set(found))
    if missing:
        raise LookupError(f"module map names {missing[0]!r}, which is not a module under "
                          f"the roots {sorted(mm.roots)}")
    return found


@contextmanager
def capture_modules(mm: ModuleMap, names, reference: dict | None = None) -> Iterator[dict]:
    """Yield a dict that holds {official name: output (official layout, float32)} on exit."""
    if mm.framework not in ("mlx", "torch"):
        raise ValueError(f"module map framework {mm.framework!r}: use 'mlx' or 'torch'")
    targets = resolve(mm, names)
    out: dict[str, np.ndarray] = {}
    run = _mlx if mm.framework == "mlx" else _torch
    with run(targets, reference or {}, out):
        yield out


@contextmanager
def _mlx(targets, reference, out):
    import mlx.core as mx

    raw: dict[str, tuple] = {}
    by_id = {id(m): (name, layout) for m, name, layout in targets.values()}
    swapped, subclasses = [], {}

    def wrap(cls):
        if cls not in subclasses:
            def __call__(self, *args, **kwargs):
                y = cls.__call__(self, *args, **kwargs)
                name, layout = by_id[id(self)]
                if name in raw:
                    return y
                raw[name] = (y, layout)
                ref = reference.get(name)
                if ref is not None and (r := to_port(ref, layout)) is not None:
                    if tuple(r.shape) != tuple(y.shape):
                        raise ValueError(f"module map: {name} is {list(y.shape)} in the port, "
                                         f"the golden's is {list(r.shape)} (layout {layout})")
                    return mx.array(r).astype(y.dtype)
                return y
            subclasses[cls] = type(cls.__name__, (cls,), {"__call__": __call__})
        return subclasses[cls]

    try:
        for module, _, _ in targets.values():
            swapped.append((module, type(module)))
            module.__class__ = wrap(type(module))
        yield
        if raw:
            mx.eval(*[y for y, _ in raw.values()])
        for name, (y, layout) in raw.items():
            out[name] = to_official(np.array(y.astype(mx.float32)), layout)
    finally:
        for module, cls in swapped:
            module.__class__ = cls


@contextmanager
def _torch(targets, reference, out):
    import torch

    handles = []

    def hook_for(name, layout):
        def hook(module, inputs, output):
            if name in out:
                return None
            y = output[0] if isinstance(output, tuple) else output
            out[name] = to_official(y.detach().float().cpu().numpy(), layout)
            ref = reference.get(name)
            if ref is None or (r := to_port(ref, layout)) is None:
                return None
            if tuple(r.shape) != tuple(y.shape):
                raise ValueError(f"module map: {name} is {list(y.shape)} in the port, the "
                                 f"golden's is {list(r.shape)} (layout {layout})")
            new = torch.from_numpy(np.array(r)).to(dtype=y.dtype, device=y.device)
            return (new, *output[1:]) if isinstance(output, tuple) else new
        return hook

    try:
        for module, name, layout in targets.values():
            handles.append(module.register_forward_hook(hook_for(name, layout)))
        yield
    finally:
        for h in handles:
            h.remove()
