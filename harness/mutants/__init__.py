"""Mutation catalogue: known porting bugs injected into the bundled MLX model at run time.

`from harness.mutants import CATALOGUE, get`: every mutant of the catalogue modules is
registered on import, so the catalogue is the same whatever was imported first. See `core`
for the contract a mutant fulfils.
"""

from harness.mutants import (catalogue, catalogue_io, catalogue_model,  # noqa: F401  (register)
                             catalogue_paths)
from harness.mutants.core import CATALOGUE, Mutant, get, patched, register, replaced_parameters

__all__ = ["CATALOGUE", "Mutant", "get", "patched", "register", "replaced_parameters"]
