"""Port adapters: test any Stable Audio Open Small port through one protocol (`protocol`).

`SHIPPED` maps the names `sao-harness port check NAME` and `pytest --port NAME` accept to
"module:attr" of the adapter class; anything else is `module:attr` or `path/to/file.py:attr`.
"""

SHIPPED: dict[str, str] = {
    "bundled": "harness.ports.bundled:BundledPort",
    # third-party adapters (harness/ports/adapters/) add one line each here
    "mlx-audiogen": "harness.ports.adapters.mlx_audiogen:MlxAudiogenPort",
    "diffusers": "harness.ports.adapters.diffusers_port:DiffusersPort",
}
