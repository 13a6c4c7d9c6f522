"""The transform classes stable-audio-tools names; constructing any of them raises."""


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"torchaudio.transforms.{type(self).__name__} was called, but the "
                           "reference venv only has a stand-in torchaudio (inference never "
                           "resamples or measures loudness)")


class Resample(_Unavailable):
    pass


class Loudness(_Unavailable):
    pass


class MelSpectrogram(_Unavailable):
    pass


class Spectrogram(_Unavailable):
    pass


def __getattr__(name):
    raise AttributeError(f"torchaudio.transforms stand-in: no {name!r}")
