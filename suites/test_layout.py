"""The harness's layout, drawn from its imports (no code run) and from the `--weights` load path
(traced): no cycles, no import back up the declared layer order, no machine paths, and a
checkpoint load that stays within a few folders.

A *room* is a subpackage of harness/ (`harness/weights/`) or a top-level module
(`harness/errors.py`). LAYERS orders the rooms bottom-up: a room may import rooms of its own
layer or below, never above (a "back-up" import), and no set of rooms or files imports itself
round (a cycle). `python suites/test_layout.py` prints the numbers.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from functools import lru_cache
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"
SUITES = Path(__file__).resolve().parent

# Bottom-up. Each room's job, and why it sits where it does:
LAYERS = [
    {"harness", "errors"},               # the package root (version), the exception types
    {"files", "settings", "host", "progress"},  # safe file I/O, SAO_* settings, host facts, stderr progress
    {"device", "blas", "provenance"},    # MLX device choice, BLAS preload, report provenance
    {"model", "audio"},                  # the MLX model (config, modules, official prefixes); audio I/O + metrics
    {"weights"},                         # checkpoint reading, validation, layout, synth, TFLite
    {"golden"},                          # golden store, injected inputs, tolerances
    {"compare"},                         # metrics, first divergence, lineage, weight comparison
    {"bench"},                           # benchmark plan, stages, baselines
    {"reference", "gate", "mutants"},    # recorders (reference env), the weight gate, mutants
    {"ports"},                           # port adapters and `port check`
    {"cli", "pytest_plugin"},            # front ends: console script and pytest plugin
]
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}

MACHINE_PATH = re.compile(r"['\"(\s]/(work|farm|root|home/\w+)/")
LOAD_CROSSINGS_MAX = 8  # issue 17: the --weights path crosses folders at most 8 times


def module_of(path: Path) -> str:
    parts = list(path.relative_to(HARNESS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def folder(module: str) -> str:
    """The directory a module lives in: harness/<sub>/ or harness/ itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (HARNESS / parts[-1]).is_dir() else "harness"


@lru_cache(maxsize=1)
def import_edges() -> dict[str, set[str]]:
    """module -> harness modules it imports (at any depth of the file, lazy imports included)."""
    files = {module_of(p): p for p in HARNESS.rglob("*.py") if "stubs" not in p.parts}
    edges = {m: set() for m in files}
    for m, p in files.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = m.split(".") if is_pkg else m.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for n in names:
                while n and n not in files:
                    n = n.rpartition(".")[0]
                if n and n != m and n.startswith("harness"):
                    edges[m].add(n)
        # `from pkg import module` also names pkg: drop the package when a submodule is named
        for n in list(edges[m]):
            if files[n].name == "__init__.py" and any(x.startswith(n + ".") for x in edges[m]):
                edges[m].discard(n)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def room_graph(edges) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for a, bs in edges.items():
        if a == "harness" or a.endswith("__init__"):
            continue
        for b in bs:
            if room(a) != room(b) and b != "harness":
                g.setdefault(room(a), set()).add(room(b))
    return g


def back_up_imports(edges) -> list[str]:
    out = []
    for a, bs in sorted(edges.items()):
        for b in sorted(bs):
            ra, rb = room(a), room(b)
            if LAYER.get(ra, len(LAYERS)) < LAYER.get(rb, len(LAYERS)):
                out.append(f"{a} -> {b}")
    return out


def unplaced_rooms(edges) -> list[str]:
    return sorted({room(m) for m in edges} - set(LAYER))


def machine_paths() -> list[str]:
    out = []
    for p in [*HARNESS.rglob("*.py"), *SUITES.rglob("*.py")]:
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                out.append(f"{p.relative_to(HARNESS.parent)}:{n}")
    return out


def floors(graph: dict[str, set[str]]) -> int:
    """Longest chain of room imports (rooms in a cycle counted once): how deep the house is."""
    depth: dict[str, int] = {}

    def d(r, seen=()):
        if r in seen:
            return 0
        if r not in depth:
            depth[r] = 1 + max((d(x, seen + (r,)) for x in graph.get(r, ())), default=0)
        return depth[r]
    return max((d(r) for r in graph), default=0)


# -- the --weights load path ------------------------------------------------------------------

def trace_load(weights: Path, out: Path) -> list[tuple[str, str]]:
    """Cross-folder calls along the path of `--weights W` in `sao-harness generate`: the call
    the generate command (the parser's `func`) makes with W as an argument, and every call
    below it, until it returns. One entry per distinct (caller module, callee module) pair
    whose folders differ, in first-occurrence order; the caller is the nearest harness frame
    below the callee. A folder is a directory (`folder`): harness/'s own modules (files,
    settings, ...) are one. Import-time code (a module body and what it calls) is not the
    path and is left out; so is the rest of the command (checking --out, generating)."""
    from harness.cli import build_parser, main

    argv = ["generate", "--weights", str(weights), "--prompt-ids", "1", "--steps", "1",
            "--out", str(out)]
    command = build_parser().parse_args(argv).func.__code__

    root = str(HARNESS)
    seen: dict[tuple[str, str], None] = {}
    module_cache: dict[str, str | None] = {}
    state = ["before"]  # -> "command" (its func entered) -> "loading" (W passed) -> "done"
    loading = []

    def mod(code) -> str | None:
        if code is None:
            return None
        f = code.co_filename
        if f not in module_cache:
            module_cache[f] = (module_of(Path(f)) if f.startswith(root) and f.endswith(".py")
                               else None)
        return module_cache[f]

    class Loaded(BaseException):  # not an Exception: the CLI's error handling lets it through
        pass

    def note(caller_frame, callee: str) -> None:
        if state[0] != "loading":
            return
        while caller_frame is not None and mod(caller_frame.f_code) is None:
            caller_frame = caller_frame.f_back
        if caller_frame is None or caller_frame.f_code.co_name == "<module>":
            return
        caller = mod(caller_frame.f_code)
        if folder(caller) != folder(callee):
            seen.setdefault((caller, callee))

    def takes_weights(frame) -> bool:
        return any(isinstance(v, (str, Path)) and Path(v) == weights
                   for v in frame.f_locals.values())

    def profile(frame, event, arg):
        if event == "return" and loading and frame is loading[0]:
            state[0] = "done"
            raise Loaded  # W is loaded: the rest of the command is not its path
        if event != "call":
            return
        code = frame.f_code
        callee = mod(code)
        if callee is None or code.co_name == "<module>":
            return
        if state[0] == "before" and code is command:
            state[0] = "command"
        elif state[0] == "command" and takes_weights(frame):
            state[0] = "loading"
            loading.append(frame)
            note(frame.f_back, callee)
        elif state[0] == "loading":
            note(frame.f_back, callee)

    # A cached function (functools.lru_cache) answers a repeated call from C, without a frame:
    # while tracing, every module's reference to a harness one goes through a Python shim.
    patched = []
    for name in [module_of(p) for p in HARNESS.rglob("*.py")
                 if not {"stubs", "reference"} & set(p.parts) and p.name != "__main__.py"]:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    for m in [m for n, m in list(sys.modules.items()) if n.startswith("harness")]:
        for attr, value in list(vars(m).items()):
            target = getattr(value, "__wrapped__", None)
            if hasattr(value, "cache_info") and mod(getattr(target, "__code__", None)):
                patched.append((m, attr, value))
                setattr(m, attr, _shim(value, note, mod(target.__code__)))
    sys.setprofile(profile)
    try:
        main(argv)
    except Loaded:
        pass
    finally:
        sys.setprofile(None)
        for m, attr, value in patched:
            setattr(m, attr, value)
    assert state[0] == "done", f"no call took --weights in the generate command ({state[0]})"
    return list(seen)


def _shim(cached, note, callee: str):
    def call(*args, **kwargs):
        note(sys._getframe(1), callee)
        return cached(*args, **kwargs)
    return call


def load_path_numbers(pairs) -> dict:
    folders = sorted({folder(m) for p in pairs for m in p})
    up = [p for p in pairs if LAYER.get(room(p[0]), 99) < LAYER.get(room(p[1]), 99)]
    return {"crossings": len(pairs), "back_up": len(up), "folders": folders,
            "path": [f"{a} -> {b}" for a, b in pairs]}


# -- the checks -------------------------------------------------------------------------------

def test_every_room_has_a_layer():
    assert unplaced_rooms(import_edges()) == []


def test_no_package_cycles():
    assert cycles(room_graph(import_edges())) == []


def test_no_file_cycles():
    assert cycles(import_edges()) == []


def test_no_import_back_up_the_layers():
    assert back_up_imports(import_edges()) == []


def test_no_machine_paths():
    assert machine_paths() == []


def test_weights_path_crosses_few_folders(tiny_checkpoint, tmp_path):
    numbers = load_path_numbers(trace_load(tiny_checkpoint, tmp_path / "x.wav"))
    assert numbers["back_up"] == 0, numbers["path"]
    assert numbers["crossings"] <= LOAD_CROSSINGS_MAX, numbers["path"]


if __name__ == "__main__":
    import json
    import tempfile

    edges = import_edges()
    graph = room_graph(edges)
    print(f"rooms {len({room(m) for m in edges})}, floors {floors(graph)}")
    print("package cycles:", cycles(graph))
    print("file cycles:", cycles(edges))
    print("back-up imports:", back_up_imports(edges))
    print("unplaced rooms:", unplaced_rooms(edges))
    print("machine paths:", machine_paths())
    if len(sys.argv) > 1:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(load_path_numbers(trace_load(Path(sys.argv[1]), Path(d) / "x.wav")),
                             indent=1))
