"""Mutation catalogue: known porting bugs injected into the bundled MLX model at run time.

`from harness.mutants import CATALOGUE, get`: every mutant of `catalogue` is registered on
import. See `core` for the contract a mutant fulfils.
"""

from harness.mutants import catalogue as _catalogue  # noqa: F401  (registers the mutants)
from harness.mutants.core import CATALOGUE, Mutant, get, patched, register, replaced_parameters

__all__ = ["CATALOGUE", "Mutant", "get", "patched", "register", "replaced_parameters"]
