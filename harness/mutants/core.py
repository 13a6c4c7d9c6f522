"""Mutants: one known porting bug each, injected into the bundled MLX model at run time.

`Mutant.apply(model, checkpoint)` returns a context manager: inside it the model carries the
bug, on exit it is exactly as before. Nothing edits model files: a mutant swaps a function
or method the model calls (a module global such as `harness.model.dit.apply_rotary`, or a
class's `__call__`) or replaces weights after load. The golden comparison must then name
`expected_module` (an official module path, as in the goldens) as the first divergence,
`local` on the reference's own input. Function and class patches reach every model in the
process while active (not thread-safe: run mutants one at a time).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

_MISSING = object()


@dataclass(frozen=True)
class Mutant:
    name: str
    expected_module: str   # official module path of the first divergence it must cause
    symptom: str           # what a listener would hear
    apply: Callable[..., ContextManager[None]]  # apply(model, checkpoint)
    # False where the symptom is below hearing at the tiny preset (the symptom says why);
    # every audible mutant must also be flagged by the audio checks on its own output.
    audible: bool = True


# Conditioning slips whose symptom is about what a *trained* model does with the condition
# (duration, timing control). Synthetic weights respond to them only weakly: the clip moves
# by mrstft 0.03-0.27, under the 0.3 audibility threshold, so they are marked inaudible at
# these presets and caught by the goldens alone.
UNTRAINED = " (not audible with synthetic weights: needs a trained model's conditioning)"

CATALOGUE: dict[str, Mutant] = {}


def register(mutant: Mutant) -> Mutant:
    if mutant.name in CATALOGUE:
        raise ValueError(f"mutant {mutant.name!r} registered twice")
    CATALOGUE[mutant.name] = mutant
    return mutant


def get(name: str) -> Mutant:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown mutant {name!r}; known: {', '.join(sorted(CATALOGUE))}") from None


@contextmanager
def patched(owner, attr: str, value) -> Iterator[None]:
    """setattr(owner, attr, value) for the duration; the old value (or its absence) restored."""
    old = vars(owner).get(attr, _MISSING)  # absent = inherited: delete again on exit
    setattr(owner, attr, value)
    try:
        yield
    finally:
        if old is _MISSING:
            delattr(owner, attr)
        else:
            setattr(owner, attr, old)


def swap(owner, attr: str, fn) -> Callable[..., ContextManager[None]]:
    """A mutant's `apply` that swaps owner.attr for fn while it is active."""
    @contextmanager
    def apply(model, checkpoint):
        with patched(owner, attr, fn):
            yield
    return apply


@contextmanager
def replaced_parameters(changes: list[tuple]) -> Iterator[None]:
    """[(module, parameter name, new mx.array)]: swap parameters in, restore the originals.
    (A list, not a dict: MLX modules are dicts, so unhashable.)"""
    originals = [(m, k, m[k]) for m, k, _ in changes]
    for m, k, v in changes:
        m[k] = v
    try:
        yield
    finally:
        for m, k, v in originals:
            m[k] = v
