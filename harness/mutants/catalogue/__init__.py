"""The mutation catalogue by subject, in pipeline order:

| module | subject |
|---|---|
| `conditioning` | T5 encoder and its sublayers, the seconds conditioner, conditioning assembly |
| `dit` | the diffusion transformer: RoPE, attention, norms, feed-forward, timestep, residuals |
| `sampler` | schedule, pingpong and euler integration, classifier-free guidance |
| `vae` | the Oobleck decoder: weights, layers, the latent layout in and the audio layout out |
| `io` | the audio after the pipeline: what it returns and what reaches the WAV file |

Importing this package registers every mutant in `harness.mutants.core.CATALOGUE`, in this
order. Bug functions a property suite reuses are public names of their subject module.
"""

from harness.mutants.catalogue import conditioning, dit, io, sampler, vae
from harness.mutants.core import register

SUBJECTS = (conditioning, dit, sampler, vae, io)

for _subject in SUBJECTS:
    for _m in _subject.MUTANTS:
        register(_m)
