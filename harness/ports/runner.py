"""Drive one adapter in its worker process, with a timeout per request.

Every way an adapter can break (bad spec, exception, missing method called anyway, hang, crash)
ends as `BrokenAdapter`: one line naming the adapter and the stage (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path

from harness.errors import BadInput

DEFAULT_TIMEOUT = 600.0  # seconds per request: a full-size 256-frame decode takes ~20-60 s


class BrokenAdapter(BadInput):
    def __init__(self, spec: str, stage: str, fault: str):
        self.spec, self.stage, self.fault = spec, stage, fault
        super().__init__(None, f"adapter {spec}: stage {stage}: {fault}")


class NotProvided(Exception):
    """The adapter lacks the stage or raised NotCovered: the stage is not covered."""


class PortProcess:
    def __init__(self, spec: str, timeout: float = DEFAULT_TIMEOUT):
        self.spec, self.timeout = spec, timeout
        self._stderr = tempfile.TemporaryFile()
        repo = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        # this source tree first, as for the reference recorder; the cwd stays the user's, so
        # a relative path/to/adapter.py or a port's own package resolves as they typed it
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.getcwd(), env.get("PYTHONPATH"))
                                            if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.ports.worker", spec],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        self._out = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self._in = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.name = self._answer("import")[1]

    def _answer(self, stage: str):
        try:
            ready = self._in.poll(self.timeout)
        except (EOFError, OSError):
            ready = True
        if not ready:
            self.close(kill=True)
            raise BrokenAdapter(self.spec, stage, f"no answer within {self.timeout:g} s "
                                                  "(hung; killed)")
        try:
            reply = self._in.recv()
        except (EOFError, OSError):
            last = self._last_err()
            self.close()
            raise BrokenAdapter(self.spec, stage, f"the adapter's process died "
                                                  f"(exit {self.proc.returncode}){last}") from None
        if reply[0] == "error":
            self.close()
            raise BrokenAdapter(self.spec, stage, reply[1])
        return reply

    def _last_err(self) -> str:
        self.proc.wait(timeout=30)
        self._stderr.seek(0)
        lines = [l for l in self._stderr.read().decode(errors="replace").splitlines() if l.strip()]
        return f": {lines[-1].strip()[:300]}" if lines else ""

    def load(self, checkpoint: Path) -> float:
        self._out.send(("load", str(checkpoint)))
        return self._answer("load")[2]

    def call(self, stage: str, args: dict, capture=(), reference=None):
        """-> (value, seconds, captured); NotProvided when the stage is not covered."""
        try:
            self._out.send(("call", stage, args, list(capture), reference))
        except (BrokenPipeError, OSError):
            last = self._last_err()
            self.close()
            raise BrokenAdapter(self.spec, stage, f"the adapter's process died "
                                                  f"(exit {self.proc.returncode}){last}") from None
        reply = self._answer(stage)
        if reply[0] in ("missing", "not_covered"):
            raise NotProvided(reply[1])
        return reply[1], reply[2], reply[3]

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None and not kill:
            try:
                self._out.send(("quit",))
                self.proc.wait(timeout=5)
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for c in (self._in, self._out, self.proc.stdin, self.proc.stdout, self._stderr):
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
