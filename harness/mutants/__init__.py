"""Mutation catalogue: known porting bugs injected into the bundled MLX model at run time.

`from harness.mutants import CATALOGUE, get`: importing this package registers every mutant
of `harness.mutants.catalogue` (one module per subject: conditioning, dit, sampler, vae,
io), so the catalogue is the same whatever was imported first. See `core` for the contract
a mutant fulfils.
"""

from harness.mutants import catalogue  # noqa: F401  (registers the catalogue)
from harness.mutants.core import CATALOGUE, Mutant, get, patched, register, replaced_parameters

__all__ = ["CATALOGUE", "Mutant", "get", "patched", "register", "replaced_parameters"]
