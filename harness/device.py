"""The MLX device every model-running command and test uses: `--device cpu|gpu`.

One place sets it (`use_device`), so a command and the tolerance policies it applies always
agree. The default is the CPU, on every platform: every committed floor was measured there,
and on Apple Silicon MLX would otherwise pick the GPU by itself. A device the machine lacks is
bad input (exit 2, one line): Linux `mlx[cpu]` wheels have no GPU backend.
"""

from __future__ import annotations

from harness import settings

DEVICES = ("cpu", "gpu")
DEFAULT = "cpu"
ENV = settings.DEVICE  # inherited by subprocesses (the benchmark gate's pytest runs)


def available(name: str) -> bool:
    import mlx.core as mx

    if name == "cpu":
        return True
    return bool(mx.is_available(mx.gpu)) if hasattr(mx, "is_available") else mx.metal.is_available()


def use_device(name: str | None = None) -> str:
    """Make `name` (default: $SAO_HARNESS_DEVICE, else cpu) MLX's default device for this
    process and its subprocesses; -> the device name. BadInput when the machine lacks it."""
    import mlx.core as mx

    from harness.errors import BadInput

    name = name or settings.device() or DEFAULT
    if name not in DEVICES:
        raise BadInput(None, f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if not available(name):
        raise BadInput(None, f"--device {name}: this machine's MLX has no {name.upper()} "
                             f"backend (mlx {mx.__version__}; Linux mlx[cpu] is CPU only)")
    mx.set_default_device(mx.gpu if name == "gpu" else mx.cpu)
    settings.set_device(name)
    return name


def current() -> str:
    """The device MLX computes on now: 'cpu' or 'gpu' (tolerance policies are keyed by it)."""
    import mlx.core as mx

    return "gpu" if mx.default_device().type == mx.gpu else "cpu"
