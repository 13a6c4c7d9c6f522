"""Official names for TFLite constants: the module scopes litert-torch writes into tensor names,
matched to official module paths, and each constant's role from the op that consumes it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.model import prefixes
from harness.model.config import ModelConfig
from harness.model.parameters import conv_modules
from harness.weights.tflite.dequant import Leaf
from harness.weights.validate import T5_TIED, expected_checkpoint, expected_t5

# -- official names --------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    name: str
    module: str
    param: str
    shape: tuple[int, ...]
    kind: str | None  # "conv" | "convT" | None
    fused: bool       # a weight-normed conv's fused weight (official: weight_g + weight_v)


def official_keys(cfg: ModelConfig) -> dict[str, Key]:
    """Every name an extraction may produce: the checkpoint's keys with each weight_g/weight_v
    pair replaced by `<module>.weight`, plus T5 under its conditioner path."""
    kinds = conv_modules(cfg)
    out: dict[str, Key] = {}
    for name, spec in expected_checkpoint(cfg).items():
        module, param = name.rsplit(".", 1)
        if param == "weight_g":
            continue
        fused = param == "weight_v"
        if fused:
            name, param = f"{module}.weight", "weight"
        out[name] = Key(name, module, param, spec.shape, kinds.get(module), fused)
    for name, spec in expected_t5(cfg.t5).items():
        if name == T5_TIED:
            continue
        key = f"{prefixes.T5}.{name}"
        module, param = key.rsplit(".", 1)
        out[key] = Key(key, module, param, spec.shape, None, False)
    return out


# The Arm file each part's weights live in (the VAE encoder is in none of them).
FILE_ROLES = {"dit": "dit", "t5": "conditioners", "conditioner": "conditioners"}


def role_of(key: str) -> str:
    """The Arm file (ARM_FILES role) that holds official tensor `key`, or "other"."""
    if prefixes.under(key, prefixes.DECODER):
        return "autoencoder"
    return FILE_ROLES.get(prefixes.part_of(key), "other")


_SEGMENT = re.compile(r"^[A-Za-z_][\w.]*$")


def scope_chains(name: str) -> list[list[str]]:
    """Module attribute chains in a litert-torch tensor name. Each '/'-separated segment is
    `<qualified class>_<attr>` (the root has no attr); ';' separates several locations."""
    chains = []
    for part in name.split(";"):
        if "/" not in part and "_" not in part.rsplit(".", 1)[-1]:
            continue
        chain = []
        for seg in part.split("/"):
            if not _SEGMENT.match(seg):
                continue
            cls = seg.rsplit(".", 1)[-1]
            if "_" in cls:
                chain.append(cls.split("_", 1)[1])
        if chain:
            chains.append(chain)
    return chains


def _match(chain: list[str], path: list[str]) -> int:
    """How many components of `path` the chain names, aligned at the end. The module itself
    must be the chain's last attr; containers that are never called (ModuleList: `layers` before
    an index) may be absent from the chain; an unmatched leading part is a wrapper difference."""
    i, j, score = len(chain) - 1, len(path) - 1, 0
    if chain[i] != path[j]:
        return 0
    while i >= 0 and j >= 0:
        if chain[i] == path[j]:
            score += 1
            i -= 1
        elif not (j + 1 < len(path) and path[j + 1].isdigit()):
            break
        j -= 1
    return score


class Namer:
    """Official keys indexed for scope matching."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.keys = official_keys(cfg)
        self.modules: dict[str, dict[str, Key]] = {}
        for k in self.keys.values():
            self.modules.setdefault(k.module, {})[k.param] = k
        self.by_last: dict[str, list[list[str]]] = {}
        for m in self.modules:
            parts = m.split(".")
            self.by_last.setdefault(parts[-1], []).append(parts)

    def resolve(self, chain: list[str]) -> tuple[str | None, int]:
        best, score, tie = None, 0, False
        for parts in self.by_last.get(chain[-1], ()):
            s = _match(chain, parts)
            if s > score:
                best, score, tie = ".".join(parts), s, False
            elif s == score and s:
                tie = True
        return (None, 0) if tie else (best, score)


# Role of a constant from its consumer: (op, input slot) -> role.
ROLES = {("FULLY_CONNECTED", 1): "fc_w", ("FULLY_CONNECTED", 2): "bias",
         ("CONV_2D", 1): "conv_w", ("CONV_2D", 2): "bias",
         ("TRANSPOSE_CONV", 1): "convT_w", ("TRANSPOSE_CONV", 3): "bias",
         ("EMBEDDING_LOOKUP", 1): "table", ("GATHER", 0): "table",
         ("MUL", 0): "mul", ("MUL", 1): "mul", ("ADD", 0): "add", ("ADD", 1): "add"}
MUL_PARAMS = ("weight", "gamma", "weights", "alpha")
ADD_PARAMS = ("bias", "beta")


def leaf_role(leaf: Leaf) -> str | None:
    roles = {ROLES.get((op.code, slot)) for op, slot in leaf.consumers}
    return roles.pop() if len(roles) == 1 else None


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _official_shape(leaf: Leaf, role: str) -> tuple[int, ...]:
    s = leaf.shape
    if role in ("conv_w", "convT_w") and len(s) == 4:
        o, k, i = s[0], (s[2] if s[1] == 1 else s[1]), s[3]
        return (o, i, k) if role == "conv_w" else (i, o, k)
    return s


def _feeds_sin(leaf: Leaf) -> bool:
    g = leaf.graph
    for op, _ in leaf.consumers:
        for out in op.outputs:
            if any(o.code == "SIN" and out in o.inputs for o in g.ops):
                return True
    return False


def candidates(namer: Namer, module: str, leaf: Leaf, role: str) -> list[Key]:
    params = namer.modules.get(module, {})
    if role in ("fc_w", "conv_w", "convT_w", "table"):
        want = {"fc_w": None, "conv_w": "conv", "convT_w": "convT", "table": None}[role]
        k = params.get("weight")
        ok = k is not None and k.kind == want and k.shape == _official_shape(leaf, role)
        return [k] if ok else []
    if role == "bias":
        k = params.get("bias")
        return [k] if k is not None and _squeezed(k.shape) == _squeezed(leaf.shape) else []
    names = MUL_PARAMS if role == "mul" else ADD_PARAMS
    if role == "mul" and "alpha" in params and "beta" in params:  # SnakeBeta: both multiply
        names = ("alpha",) if _feeds_sin(leaf) else ("beta",)
    return [params[n] for n in names if n in params
            and _squeezed(params[n].shape) == _squeezed(leaf.shape)]


def by_scope(namer: Namer, leaf: Leaf, role: str) -> Key | None:
    """The key named by the best-matching scope: first in the names of the consumer's outputs
    (the op's own location), then in the constant's names (which the converter may merge from
    several uses)."""
    groups = ([leaf.graph.tensors[o].name for op, _ in leaf.consumers for o in op.outputs],
              [s.name for s in leaf.sources])
    for names in groups:
        best: dict[str, tuple[int, Key]] = {}
        for name in names:
            # A fused location lists the callers first and the op's own scope last.
            for chain in reversed(scope_chains(name)):
                module, score = namer.resolve(chain)
                keys = candidates(namer, module, leaf, role) if module else []
                for k in keys:
                    if score > best.get(k.name, (0, k))[0]:
                        best[k.name] = (score, k)
                if keys:
                    break
        ranked = sorted(best.values(), key=lambda x: -x[0])
        if ranked and (len(ranked) == 1 or ranked[0][0] > ranked[1][0]):
            return ranked[0][1]
    return None


def short_name(name: str) -> str:
    """First location of a TFLite tensor name, last three scopes: enough to find it."""
    first = name.split(";")[0]
    return "/".join(first.split("/")[-3:])


