"""sao-harness: test and regression-benchmark harness for Stable Audio Open Small ports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sao-harness")  # pyproject.toml's, as installed (wheel or editable)
except PackageNotFoundError:  # a source tree run without installing it
    __version__ = "0+unknown"
