"""The official reference (stable-audio-tools 0.0.19 in PyTorch, and its LiteRT export) run on
injected inputs to record goldens. Needs the reference venv (install_env.sh); nothing here is
imported by the MLX runtime.

MKL's conditional numerical reproducibility is pinned before torch can load MKL: without it the
sgemm kernel depends on buffer alignment and a recording differs between processes in the last
bits (measured: 75 of 88 tiny tensors, up to 3.6e-7 abs). Must be set before MKL initialises,
hence here, at package import.
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
