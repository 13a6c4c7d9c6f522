"""sao-harness: test and regression-benchmark harness for Stable Audio Open Small ports."""

__version__ = "0.1.0"
