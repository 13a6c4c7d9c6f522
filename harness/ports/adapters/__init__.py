"""Adapters for third-party ports installed from PyPI (the `ports` extra): each builds its
port with the port's own code from a local official-layout checkpoint."""
