"""Stand-in for k_diffusion in the reference venv.

stable_audio_tools.inference.sampling does `import k_diffusion as K` at module level and uses
it only in the v-diffusion samplers (sample_k), never in sample_rf / pingpong. Any attribute
access raises so a recording cannot depend on it.
"""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise RuntimeError(f"k_diffusion.{name} was used, but the reference venv only has a "
                       "stand-in k_diffusion (rectified-flow sampling never needs it)")
