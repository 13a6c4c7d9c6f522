"""Options shared by several subcommands."""

from __future__ import annotations

from harness.device import DEFAULT, DEVICES, ENV


def add_device_argument(parser) -> None:
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help=f"MLX device to run the model on (default: ${ENV} or {DEFAULT}; "
                             "gpu = Metal on Apple Silicon)")
