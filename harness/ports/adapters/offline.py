"""Build third-party ports from a local official-layout checkpoint with the network shut.

Their converters fetch from the Hugging Face hub; the adapters hand them the local files
instead, and any connection attempt fails at once (an `OSError`, which is what the converters
already catch for an unreachable hub) rather than hanging on retries.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class NetworkBlocked(OSError):
    pass


@contextmanager
def no_network(who: str) -> Iterator[None]:
    """Every socket connect in this process raises NetworkBlocked while the block runs."""
    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"{who} tried to reach the network; sao-harness builds ports "
                             "from local files only")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.create_connection
    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = saved


@contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    saved = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, saved)


def t5_tokenizer(checkpoint_dir: Path):
    """transformers' T5 tokenizer from the checkpoint's own t5/spiece.model (no hub)."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab_file=str(Path(checkpoint_dir) / "t5" / "spiece.model"))


class TokenIds:
    """Stands in for a port's tokenizer: returns the golden's token ids, right-padded with the
    pad id to the length the port asks for (so the port's own padding rule still applies)."""

    def __init__(self, input_ids, attention_mask):
        import numpy as np

        self.ids = np.asarray(input_ids, np.int64)
        self.mask = np.asarray(attention_mask, np.int64)

    def __call__(self, text, *, max_length=None, **kwargs):
        import numpy as np

        ids, mask = self.ids, self.mask
        if max_length is not None and max_length != ids.shape[1]:
            if max_length < ids.shape[1]:
                ids, mask = ids[:, :max_length], mask[:, :max_length]
            else:
                pad = ((0, 0), (0, max_length - ids.shape[1]))
                ids, mask = np.pad(ids, pad), np.pad(mask, pad)
        return {"input_ids": ids, "attention_mask": mask}
