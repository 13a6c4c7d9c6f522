"""Binding TFLite inputs by name and shape, never by index (Arm's DiT input order changed
between export versions). Pure logic: runs in the default env, no interpreter needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import BadInput
from harness.reference.tflite import bind

SHAPES = {"x": (1, 64, 256), "t": (1,), "cross_attn_cond": (1, 65, 768), "global_cond": (1, 768)}
PATH = Path("dit_model.tflite")


def details(order, names=None):
    names = names or [f"serving_default_args_{i}" for i in range(len(order))]
    return [{"name": n, "index": 10 + i, "shape": np.array(SHAPES[r]), "dtype": np.float32}
            for i, (r, n) in enumerate(zip(order, names))]


@pytest.mark.parametrize("order", [["cross_attn_cond", "global_cond", "x", "t"],   # older export
                                   ["t", "global_cond", "cross_attn_cond", "x"],   # newer export
                                   ["x", "t", "cross_attn_cond", "global_cond"]])  # ours
def test_anonymous_inputs_bind_by_shape(order):
    got = bind(details(order), SHAPES, PATH)
    assert {role: d["index"] for role, d in got.items()} == \
        {role: 10 + order.index(role) for role in SHAPES}


def test_names_win_over_order():
    order = ["t", "global_cond", "cross_attn_cond", "x"]
    names = ["serving_default_t:0", "serving_default_global_cond:0",
             "serving_default_cross_attn_cond:0", "serving_default_x:0"]
    got = bind(details(order, names), SHAPES, PATH)
    assert got["x"]["name"] == "serving_default_x:0" and got["t"]["index"] == 10


def test_same_shape_resolved_by_name():
    # tiny-like case where two inputs share a shape: only names can tell them apart
    shapes = {"x": (1, 8, 8), "cross_attn_cond": (1, 8, 8)}
    ds = [{"name": "serving_default_cross_attn_cond", "index": 1, "shape": np.array((1, 8, 8))},
          {"name": "serving_default_x", "index": 2, "shape": np.array((1, 8, 8))}]
    got = bind(ds, shapes, PATH)
    assert got["x"]["index"] == 2 and got["cross_attn_cond"]["index"] == 1
    anon = [dict(d, name=f"serving_default_args_{i}") for i, d in enumerate(ds)]
    with pytest.raises(BadInput, match="dit_model.tflite: cannot bind"):
        bind(anon, shapes, PATH)


def test_lost_global_input_is_refused():
    """One older Arm export dropped the global conditioning input."""
    with pytest.raises(BadInput, match=r"cannot bind global_cond \(1, 768\)"):
        bind(details(["cross_attn_cond", "x", "t"]), SHAPES, PATH)
