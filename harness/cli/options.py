"""Options shared by several subcommands."""

from __future__ import annotations

from pathlib import Path

from harness.device import DEFAULT, DEVICES, ENV
from harness.settings import GOLDEN_DIR


def add_device_argument(parser) -> None:
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help=f"MLX device to run the model on (default: ${ENV} or {DEFAULT}; "
                             "gpu = Metal on Apple Silicon)")


def add_golden_dir_argument(parser, default: Path | None = None,
                            what: str = "golden store") -> None:
    """`--golden-dir`, the same store whichever command: harness.golden.store.DEFAULT_ROOT as
    the default, or None where a command resolves it itself (the gate tolerates its absence)."""
    parser.add_argument("--golden-dir", type=Path, default=default,
                        help=f"{what} (default: ${GOLDEN_DIR}, else the checkout's golden/, "
                             "or an installed wheel's packaged tiny goldens)")
