"""Run the stages in order, fail closed, within a time limit.

- A `BadInput` about the candidate fails its stage (reject, exit 1); one about the gate's
  own inputs (options, the approved checkpoint, --golden-dir) propagates (exit 2).
- Any other exception is an `error` stage: reject, with the exception in the reasons.
- Stages after a failed structure or load stage are skipped; a skipped required stage is
  a reject.
- The stages run in a worker thread; with --timeout, when the time is up the verdict is
  built from the stages finished so far plus a `timeout` error (reject). The worker is a
  daemon thread and is abandoned: MLX work cannot be interrupted from Python (MLX releases
  the GIL while it computes, so the wait ends on time).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from pathlib import Path

from harness.errors import BadInput
from harness.files import regular_file
from harness.gate.result import ERROR, FAIL, SKIP, GateResult, Stage
from harness.gate.stages import STAGES, Gate, OptionError, Options
from harness.progress import progress

MAX_FRAMES = 4096  # --frames: 16x the full model's length; the probes' memory grows with it
NEEDS = {"weights": ("structure",), "baseline": ("structure",), "load": ("structure",),
         "parity": ("load",), "drift": ("load", "baseline"), "audio": ("load",)}


def check_options(opts: Options) -> None:
    if opts.expect not in ("same", "update"):
        raise BadInput(None, f"--expect must be same or update, got {opts.expect!r}")
    if opts.expect == "same" and opts.baseline is None:
        raise BadInput(None, "--expect same needs --baseline (the approved checkpoint)")
    if opts.golden_dir is not None and not Path(opts.golden_dir).is_dir():
        raise BadInput(opts.golden_dir, "golden directory does not exist")
    if opts.frames is not None and not 1 <= opts.frames <= MAX_FRAMES:
        raise BadInput(None, f"--frames {opts.frames} outside [1, {MAX_FRAMES}] (latent frames; "
                             "the full model's own length is 256)")
    if opts.timeout is not None and not (math.isfinite(opts.timeout) and opts.timeout > 0):
        raise BadInput(None, f"--timeout must be a finite number of seconds > 0, got "
                             f"{opts.timeout}")
    if opts.audio_thresholds is not None:
        from harness.audio.check import thresholds

        regular_file(opts.audio_thresholds, "audio thresholds file")  # never a FIFO
        try:
            thresholds(opts.audio_thresholds)  # BadInput when a check has no threshold
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:  # TOMLDecodeError
            raise BadInput(opts.audio_thresholds, f"not a thresholds TOML file ({e})") from None


class _Run:
    """Worker state shared with the waiting thread; stages are appended when finished."""

    def __init__(self, gate: Gate):
        self.gate = gate
        self.lock = threading.Lock()
        self.current = "prepare"
        self.cancelled = False
        self.bad_input: BadInput | None = None
        self.resource: str | None = None  # a resource failure: exit 2, never a verdict

    def add(self, stage: Stage) -> bool:
        with self.lock:
            if self.cancelled:
                return False
            self.gate.result.stages.append(stage)
            return True

    def stage(self, name: str) -> Stage:
        st = Stage(name, required=name in self.gate.result.required)
        for need in NEEDS.get(name, ()):
            s = self.gate.result.stage(need)
            if s is None or s.status in (FAIL, ERROR, SKIP):
                why = "did not run" if s is None else f"{s.status}: {s.summary or s.reasons[0]}"
                st.status, st.summary = SKIP, f"not run: {need} {why}"
                return st
        self.current = name
        progress(f"gate: {name}")
        t0 = time.perf_counter()
        try:
            getattr(self.gate, name)(st)
        except OptionError as e:  # the gate's own option: exit 2, no verdict
            self.bad_input = e
            raise
        except BadInput as e:  # the candidate (or a golden) is bad: a reject, not a crash
            st.status = FAIL
            st.reasons.append(str(e))
        except MemoryError as e:
            self.resource = f"out of memory in the {name} stage ({e or 'MemoryError'})"
            raise
        except Exception as e:  # noqa: BLE001 - fail closed on anything
            st.status = ERROR
            st.reasons.append(f"internal error: {type(e).__name__}: {e}")
            st.data["traceback"] = traceback.format_exc()
        st.seconds = time.perf_counter() - t0
        progress(f"gate: {name} {st.status} ({st.seconds:.1f} s)")
        return st

    def __call__(self) -> None:
        import mlx.core as mx

        try:
            # MLX streams belong to the thread that made them: this worker needs its own,
            # and must destroy it before it ends (a stream left behind by a finished thread
            # aborts the process at exit, mlx 0.32: "terminate called without an active
            # exception").
            stream = mx.new_stream(mx.default_device())
            try:
                with mx.stream(stream):
                    self._run()
            finally:
                mx.synchronize(stream)
                mx.clear_streams()
        except BaseException as e:  # noqa: BLE001 - never let the worker die silently
            self.add(Stage("worker", ERROR, reasons=[f"internal error: {type(e).__name__}: {e}"]))

    def _run(self) -> None:
        try:
            progress("gate: prepare (candidate, baseline, goldens)")
            self.gate.prepare()
        except BadInput as e:
            self.bad_input = e
            return
        except Exception as e:  # noqa: BLE001
            self.add(Stage("prepare", ERROR, reasons=[f"internal error: {type(e).__name__}: {e}"]))
            return
        for name in STAGES:
            try:
                st = self.stage(name)
            except (MemoryError, OptionError):
                return  # run_gate raises self.resource / self.bad_input: exit 2, no verdict
            except BaseException as e:  # noqa: BLE001 - even the bookkeeping fails closed
                st = Stage(name, ERROR, reasons=[f"internal error: {type(e).__name__}: {e}"])
            if not self.add(st):
                return
        self.current = "done"


def run_gate(opts: Options) -> GateResult:
    """The verdict on opts.candidate. Raises BadInput only for the gate's own inputs."""
    from harness.provenance import provenance

    check_options(opts)
    gate = Gate(opts)
    gate.result.provenance = provenance()
    run = _Run(gate)
    worker = threading.Thread(target=run, name="sao-gate", daemon=True)
    worker.start()
    worker.join(opts.timeout)
    if worker.is_alive():
        with run.lock:
            run.cancelled = True
            stages = list(gate.result.stages)
        result = GateResult(gate.result.expect, gate.result.required, stages,
                            dict(gate.result.subjects), list(gate.result.notes),
                            provenance=gate.result.provenance)
        result.stages.append(Stage("timeout", ERROR, summary="timed out", reasons=[
            f"gate did not finish within --timeout {opts.timeout:g} s "
            f"(still in stage {run.current})"]))
        result.timed_out = True
        return result
    if run.bad_input is not None:
        raise run.bad_input
    if run.resource is not None:
        raise BadInput(opts.candidate, f"{run.resource}: a resource limit of this machine, not "
                                       "a verdict on the weights (lower --frames or free memory)")
    return gate.result
