"""Command-line interface suites: the JSON contract, help and options."""
