"""Official module paths (the stable-audio-tools state-dict and module prefixes) and the one
table from them to the model's parts. Every grouping of names by part (tolerance groups, drift
stages, TFLite files, report sections) derives from `part_of`; no other module spells a prefix.
"""

from __future__ import annotations

CONDITIONER = "conditioner"
PROMPT = "conditioner.conditioners.prompt"
T5 = "conditioner.conditioners.prompt.model"       # Hugging Face T5EncoderModel names below it
SECONDS = "conditioner.conditioners.seconds_total"
DIT = "model.model"
PRETRANSFORM = "pretransform"
VAE = "pretransform.model"
ENCODER = "pretransform.model.encoder"
DECODER = "pretransform.model.decoder"

# Prefix -> part; the longest matching prefix wins. `sampler.*`, `input.*` and `output.*` are the
# harness's own names for the sampler's tensors, the injected inputs and the returned audio.
PARTS = {CONDITIONER: "conditioner", T5: "t5", DIT: "dit", PRETRANSFORM: "vae",
         "sampler": "sampler", "input": "input", "output": "vae"}

# The top-level groups of model.safetensors (T5 ships in t5/model.safetensors).
CHECKPOINT_GROUPS = (DIT + ".", CONDITIONER + ".", VAE + ".")


def under(name: str, prefix: str) -> bool:
    """Is `name` the module `prefix` or inside it (a sampler-step suffix `@i` ignored)?"""
    base = name.split("@", 1)[0]
    return base == prefix or base.startswith(prefix + ".")


def part_of(name: str) -> str | None:
    """'t5', 'conditioner', 'dit', 'vae', 'sampler' or 'input' for a module or tensor name."""
    best = max((p for p in PARTS if under(name, p)), key=len, default=None)
    return PARTS[best] if best is not None else None
