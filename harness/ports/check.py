"""`port check`: one adapter, stage by stage, against the golden recorded from its checkpoint.

Every stage is fed the golden's own inputs to it (the reference's T5 ids, conditioning, x and
t per sampler step, final latents), so a stage's failure is never inherited from an earlier
stage. Its outputs (and, where the adapter captures them, its per-layer intermediates) are
compared with the golden by the golden comparison's own metric and tolerance policy
(`harness.compare`): the first tensor out of tolerance in the golden's execution order is the
stage's first divergence. With capture, a second run replays the golden's tensors into the
port's modules (teacher forcing): a divergence still there is `local`, else `inherited`. A
port without capture gets the stage's outputs only; they are `local` to the stage.

Stages, in pipeline order: converted_weights, text_encoder, conditioner, dit (v at every
sampler step on the golden's x), sampler (the trajectory with the golden's injected noise),
decode, audio (the port's own `generate` through `audio check` against the bundled model's clip
from the same inputs). Each carries the port's wall time next to the bundled model's on the
same call.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from harness.compare.metrics import measure
from harness.errors import BadInput
from harness.golden.store import group_of
from harness.golden.tolerances import Policy, policy_for
from harness.model import prefixes
from harness.ports.result import FAIL, NOT_COVERED, PASS, PortReport, StageResult, TensorRow
from harness.ports.runner import DEFAULT_TIMEOUT, BrokenAdapter, NotProvided, PortProcess

STAGE_NAMES = ("converted_weights", "text_encoder", "conditioner", "dit", "sampler", "decode",
               "audio")
AUDIO_SEED = 1
PROMPT = prefixes.PROMPT
T5_OUT = prefixes.T5


# -- the golden --------------------------------------------------------------------------------

def select_golden(weights: Path, golden_dir: Path, case: str | None):
    """-> (golden, the other goldens recorded from `weights`, checkpoint). Goldens match by
    sha256, as in `compare`; the golden is the named case, else the matching torch pingpong
    cfg-1 case with the most tensors (tiny-torch; full-torch-short or full-torch)."""
    from harness.compare.divergence import OtherWeights, settings_of, verify_weights
    from harness.golden.store import case_dirs, check_golden
    from harness.weights.load import open_checkpoint

    ckpt = open_checkpoint(weights)
    if case is not None:
        golden = check_golden(golden_dir / case, case)
        verify_weights(golden, ckpt)
        return golden, [], ckpt
    matching = []
    for d in case_dirs(golden_dir):
        golden = check_golden(d, d.name)
        try:
            verify_weights(golden, ckpt)
        except OtherWeights:
            continue
        matching.append(golden)
    if not matching:
        raise BadInput(golden_dir, f"no golden case was recorded from {weights}")

    def rank(g):
        steps, sampler, cfg = settings_of(g)
        return (g.producer == "torch", sampler == "pingpong" and cfg == 1.0, len(g.tensors))

    best = max(matching, key=rank)
    return best, [g for g in matching if g is not best], ckpt


class Golden:
    """The golden case with its settings, inputs and policy."""

    def __init__(self, golden, ckpt):
        from harness.compare.divergence import check_reference_tensors, inputs_of, settings_of
        from harness.model.sampler import logsnr_schedule

        self.g, self.ckpt, self.cfg = golden, ckpt, ckpt.config
        self.steps, self.sampler, self.cfg_scale = settings_of(golden)
        self.x = inputs_of(golden, SimpleNamespace(config=ckpt.config), self.steps)
        self.names = [n for n in golden.manifest["order"] if not n.startswith("input.")]
        check_reference_tensors(golden, self.names)
        self.policy: Policy = policy_for(golden.producer, "fp32", golden.preset)
        self.t = golden["sampler.t"] if "sampler.t" in golden.tensors else \
            logsnr_schedule(self.steps)

    def has(self, name: str) -> bool:
        return name in self.g.tensors

    def __getitem__(self, name: str) -> np.ndarray:
        return self.g[name]

    def group(self, *groups: str, prefix: str = "") -> list[str]:
        return [n for n in self.names if group_of(n) in groups and n.startswith(prefix)]


# -- comparing one stage ----------------------------------------------------------------------

def compare_rows(gold: Golden, got: dict[str, np.ndarray],
                 replayed: dict[str, np.ndarray] | None = None) -> list[TensorRow]:
    """Rows in the golden's order for every name in `got` (shapes already checked)."""
    rows = []
    for name in [n for n in gold.names if n in got]:
        tol = gold.policy.tolerance(name)
        if tol is None:
            raise BadInput(gold.g.path, f"tensor {name} has no tolerance in {gold.policy.label}")
        m = measure(got[name], gold[name])
        local = None
        if replayed is not None and name in replayed:
            local = not tol.accepts(measure(replayed[name], gold[name]))
        rows.append(TensorRow(name, m, tol.snr_db, tol.accepts(m),
                              "" if tol.accepts(m) else tol.why_not(m), local))
    return rows


def stage_verdict(name: str, rows: list[TensorRow], captured: bool, note: str = "") -> StageResult:
    if not rows:
        return StageResult(name, NOT_COVERED, "no output comparable with this golden")
    first = next((r for r in rows if not r.passed), None)
    worst = min(rows, key=lambda r: r.metrics.snr_db - r.floor_db
                if not math.isnan(r.metrics.snr_db) else -math.inf)
    if first is None:
        detail = (f"{len(rows)} tensors within tolerance (smallest margin: {worst.name} SNR "
                  f"{worst.metrics.snr_db:.1f} dB >= {worst.floor_db:g} dB)")
        return StageResult(name, PASS, detail + note, snr_db=worst.metrics.snr_db, rows=rows)
    where = "local" if not captured or first.local is not False else "inherited"
    detail = f"first divergence: {first.name} ({first.why}), {where}"
    if where == "inherited":
        fl = next((r for r in rows if r.local), None)
        if fl is not None:
            detail += f"; first local failure: {fl.name}"
    return StageResult(name, FAIL, detail + note, first.name, where, first.metrics.snr_db,
                       rows=rows)


# -- the check ---------------------------------------------------------------------------------

class Checker:
    """Runs the stages; the bundled model's process (latency and audio reference) starts on
    first use, so a port that breaks early costs one process."""

    def __init__(self, port: PortProcess, gold: Golden, timeout: float, others=()):
        self.port, self.gold, self.timeout = port, gold, timeout
        self.others = list(others)  # goldens of the same weights (another sampler, cfg)
        self._bundled: PortProcess | None = None

    @property
    def bundled(self) -> PortProcess:
        if self.port.spec == "bundled":
            return self.port
        if self._bundled is None:
            self._bundled = PortProcess("bundled", self.timeout)
            self._bundled.load(self.gold.ckpt.root)
        return self._bundled

    def close(self) -> None:
        if self._bundled is not None:
            self._bundled.close()

    def validate(self, stage: str, what: str, a, shape: tuple) -> np.ndarray:
        if not isinstance(a, np.ndarray):
            raise BrokenAdapter(self.port.spec, stage, f"{what} is {type(a).__name__}, "
                                                       "not an array")
        if a.dtype != np.float32 or tuple(a.shape) != tuple(shape):
            raise BrokenAdapter(self.port.spec, stage, f"{what} is {a.dtype.name}{list(a.shape)}, "
                                                       f"expected float32{list(shape)}")
        if not np.isfinite(a).all():
            raise BrokenAdapter(self.port.spec, stage, f"{what} holds NaN/Inf")
        return a

    def run(self, stage, method, args, names, compare) -> StageResult:
        """Timed free run, then (with capture) a capture run and, on a divergence, a replay.
        compare(value) -> {golden name: port array}, validating the value."""
        try:
            value, seconds, _ = self.port.call(method, args)
        except NotProvided as e:
            return StageResult(stage, NOT_COVERED, str(e))
        got = compare(value)
        free = replay = None
        if names:
            _, _, free = self.port.call(method, args, names)
            free = {n: a for n, a in free.items() if n in names}
            for n, a in free.items():
                if np.shape(a) != self.gold[n].shape:
                    raise BrokenAdapter(self.port.spec, stage,
                                        f"captured {n} is {list(np.shape(a))}, the golden's "
                                        f"{list(self.gold[n].shape)}")
        rows = compare_rows(self.gold, {**(free or {}), **got})
        if free and any(not r.passed for r in rows):
            reference = {n: self.gold[n] for n in names if n in free}
            _, _, replay = self.port.call(method, args, names, reference)
            rows = compare_rows(self.gold, {**free, **got}, replay)
        result = stage_verdict(stage, rows, captured=bool(free))
        result.seconds = seconds
        result.bundled_seconds = self.bundled_time(method, args, seconds)
        return result

    def bundled_time(self, method: str, args: dict, seconds: float) -> float | None:
        if self.port.spec == "bundled":
            return seconds
        try:
            return self.bundled.call(method, args)[1]
        except NotProvided:
            return None

    # each stage: inputs from the golden, outputs to golden names
    def converted_weights(self) -> StageResult:
        from harness.ports.weights import compare_weights

        with tempfile.TemporaryDirectory(prefix="sao-port-weights-") as tmp:
            try:
                value, seconds, _ = self.port.call("converted_weights", {"dir": tmp})
            except NotProvided as e:
                return StageResult("converted_weights", NOT_COVERED, str(e))
            res = compare_weights(Path(value["file"]), self.gold.ckpt)
        if not res.rows and res.verdict == PASS:
            raise BrokenAdapter(self.port.spec, "converted_weights", "returned no tensors")
        res.seconds = seconds
        return res

    def text_encoder(self) -> StageResult:
        x, g = self.gold.x, self.gold
        if not g.has(T5_OUT):
            return StageResult("text_encoder", NOT_COVERED, f"the golden has no {T5_OUT}")
        zeroed = []

        def compare(v):
            v = self.validate("encode_text", "output", v, g[T5_OUT].shape)
            if g.has(PROMPT) and not compare_rows(g, {T5_OUT: v})[0].passed \
                    and compare_rows(g, {PROMPT: v})[0].passed:
                zeroed.append(True)  # padding already zeroed: compared as the conditioner's
                return {PROMPT: v}
            return {T5_OUT: v}

        r = self.run("text_encoder", "encode_text",
                     {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"]},
                     g.group("t5"), compare)
        if zeroed:
            r.detail += " (the port's text encoder zeroes padding itself)"
        return r

    def conditioner(self) -> StageResult:
        x, g = self.gold.x, self.gold
        if not (g.has("conditioner.cross_attn_cond") and g.has("conditioner.global_cond")):
            return StageResult("conditioner", NOT_COVERED, "the golden has no conditioner outputs")

        def compare(v):
            if not isinstance(v, dict) or {"cross", "global_"} - set(v):
                raise BrokenAdapter(self.port.spec, "condition", "did not return a "
                                    "Conditioning (cross, global_)")
            return {"conditioner.cross_attn_cond": self.validate(
                        "condition", "cross", v["cross"], g["conditioner.cross_attn_cond"].shape),
                    "conditioner.global_cond": self.validate(
                        "condition", "global_", v["global_"], g["conditioner.global_cond"].shape)}

        return self.run("conditioner", "condition",
                        {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"],
                         "seconds_total": x["seconds_total"].astype(np.float32)},
                        g.group("t5", "conditioner"), compare)

    def _cond(self):
        g = self.gold
        return g["conditioner.cross_attn_cond"], g["conditioner.global_cond"]

    def dit(self) -> StageResult:
        """v at every step on the golden's x_i and t_i (CFG combined as the protocol says);
        per-layer capture at step 0 (the goldens record the DiT there)."""
        g = self.gold
        steps = [i for i in range(g.steps) if g.has(f"sampler.steps.{i}.v")
                 and (i == 0 or g.has(f"sampler.steps.{i - 1}.x"))]
        if not steps or not g.has("conditioner.cross_attn_cond"):
            return StageResult("dit", NOT_COVERED, "the golden has no DiT inputs/outputs")
        cross, glob = self._cond()
        results = []
        for i in steps:
            xi = g.x["noise"] if i == 0 else g[f"sampler.steps.{i - 1}.x"]
            b = xi.shape[0]
            ti = np.full((b,), g.t[i], np.float32)
            cfg = g.cfg_scale != 1.0
            args = {"x": np.concatenate([xi, xi]) if cfg else xi,
                    "t": np.concatenate([ti, ti]) if cfg else ti,
                    "cross": np.concatenate([cross, np.zeros_like(cross)]) if cfg else cross,
                    "global_": np.concatenate([glob, glob]) if cfg else glob}
            name = f"sampler.steps.{i}.v"

            def compare(v, name=name, n=args["x"].shape):
                v = self.validate("dit_forward", "v", v, n)
                if cfg:
                    v = v[b:] + (v[:b] - v[b:]) * np.float32(g.cfg_scale)
                out = {name: v}
                if i == 0 and not cfg and g.has(prefixes.DIT):
                    out[prefixes.DIT] = v  # the DiT's own output at step 0
                return out

            names = g.group("dit") if i == 0 and not cfg else []
            results.append(self.run("dit", "dit_forward", args, names, compare))
            if results[-1].verdict == NOT_COVERED:
                return results[-1]
        rows = [r for res in results for r in res.rows]
        out = next((r for r in results if r.verdict == FAIL), None) or \
            stage_verdict("dit", rows, captured=False)
        out.rows = rows
        out.detail += f" [v at {len(steps)} timesteps]"
        out.seconds = min(r.seconds for r in results)
        out.bundled_seconds = min((r.bundled_seconds for r in results
                                   if r.bundled_seconds is not None), default=None)
        return out

    def sampler(self) -> StageResult:
        """On the golden's sampler; a port without it is checked on another golden of the same
        weights whose sampler it has (tiny-torch-euler for an euler-only port), if any."""
        first = self._sampler()
        if first.verdict != NOT_COVERED:
            return first
        primary = self.gold
        try:
            for other in self.others:
                if other.manifest.get("settings", {}).get("sampler") == primary.sampler:
                    continue
                self.gold = Golden(other, primary.ckpt)
                alt = self._sampler()
                if alt.verdict != NOT_COVERED:
                    alt.detail += f" on golden {other.case} ({primary.sampler}: {first.detail})"
                    return alt
        finally:
            self.gold = primary
        return first

    def _sampler(self) -> StageResult:
        g = self.gold
        last = f"sampler.steps.{g.steps - 1}.x"
        if not g.has(last) or not g.has("conditioner.cross_attn_cond"):
            return StageResult("sampler", NOT_COVERED, "the golden has no sampler trajectory")
        cross, glob = self._cond()
        shape = g.x["noise"].shape

        def compare(v):
            if not isinstance(v, dict) or "latents" not in v:
                raise BrokenAdapter(self.port.spec, "sample", "did not return a SamplerResult")
            got = {last: self.validate("sample", "latents", v["latents"], shape)}
            for kind in ("xs", "denoised", "v"):
                seq = v.get(kind)
                if seq is None:
                    continue
                if len(seq) != g.steps:
                    raise BrokenAdapter(self.port.spec, "sample", f"{kind} has {len(seq)} "
                                        f"entries for {g.steps} steps")
                key = {"xs": "x"}.get(kind, kind)
                for i, a in enumerate(seq):
                    name = f"sampler.steps.{i}.{key}"
                    if g.has(name):
                        got[name] = self.validate("sample", f"{kind}[{i}]", a, shape)
            return got

        args = {"noise": g.x["noise"], "step_noise": g.x["step_noise"][: g.steps],
                "cond": {"cross": cross, "global_": glob}, "steps": g.steps,
                "sampler": g.sampler, "cfg_scale": g.cfg_scale}
        r = self.run("sampler", "sample", args, g.group("sampler", prefix="sampler.steps."),
                     compare)
        if r.verdict != NOT_COVERED:
            r.detail += f" [{g.sampler}, {g.steps} steps, cfg {g.cfg_scale:g}]"
        return r

    def decode(self) -> StageResult:
        g = self.gold
        last, out = f"sampler.steps.{g.steps - 1}.x", prefixes.DECODER
        if not (g.has(last) and g.has(out)):
            return StageResult("decode", NOT_COVERED, "the golden has no decode")
        return self.run("decode", "decode", {"latents": g[last]}, g.group("vae"),
                        lambda v: {out: self.validate("decode", "audio", v, g[out].shape)})

    def audio(self) -> StageResult:
        """The port's own generate on fixed inputs vs the bundled model's clip from them."""
        from harness.audio.check import MIN_SAMPLES, check_audio, reference_signal
        from harness.bench.plan import STEPS, fixed_inputs

        cfg = self.gold.cfg
        ratio = cfg.vae.downsampling_ratio
        frames = -(-MIN_SAMPLES // ratio)
        x = fixed_inputs(cfg, frames, seed=AUDIO_SEED)
        shape = (1, cfg.vae.audio_channels, frames * ratio)
        note = ""
        for sampler in ("pingpong", "euler"):
            args = {"input_ids": x.input_ids, "attention_mask": x.attention_mask,
                    "seconds_total": x.seconds_total, "noise": x.noise,
                    "step_noise": x.step_noise, "steps": STEPS, "sampler": sampler,
                    "cfg_scale": 1.0}
            try:
                value, seconds, _ = self.port.call("generate", args)
                break
            except NotProvided as e:
                if sampler == "euler":
                    return StageResult("audio", NOT_COVERED, str(e))
                note = f" (no pingpong: {e}; both generated with euler)"
        clip = self.validate("generate", "audio", value, shape)[0]
        ref, ref_seconds = (value, seconds) if self.port.spec == "bundled" else \
            self.bundled.call("generate", args)[:2]
        ref = np.asarray(ref, np.float32)[0]
        sr = cfg.sample_rate
        signal = reference_signal(ref, sr)
        applicable = {c.name for c in check_audio(ref, sr, reference=signal).checks if c.passed}
        report = check_audio(clip, sr, reference=signal)
        failed = [c for c in report.checks if not c.passed and c.name in applicable]
        snr = measure(clip, ref).snr_db
        base = (f"{len(applicable)} audio checks that the bundled clip passes; vs the bundled "
                f"clip SNR {snr:.1f} dB [{frames} frames, {sampler}]{note}")
        res = StageResult("audio", FAIL if failed else PASS,
                          (f"heard: {', '.join(str(c) for c in failed)}; " if failed else "")
                          + base, failed[0].name if failed else None, None, snr)
        res.seconds, res.bundled_seconds = seconds, ref_seconds
        return res


def check_port(spec: str, weights: Path | None = None, golden_dir: Path | None = None,
               case: str | None = None, timeout: float = DEFAULT_TIMEOUT,
               stages=STAGE_NAMES) -> PortReport:
    from harness.golden.store import DEFAULT_ROOT
    from harness.weights.synth import default_checkpoint

    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown:
        raise BadInput(None, f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGE_NAMES)}")
    if not timeout > 0:
        raise BadInput(None, f"--timeout must be a positive number of seconds, got {timeout}")
    weights = Path(weights) if weights else default_checkpoint("tiny")
    golden, others, ckpt = select_golden(weights, Path(golden_dir or DEFAULT_ROOT), case)
    gold = Golden(golden, ckpt)
    with PortProcess(spec, timeout) as port:
        port.load(ckpt.root)
        checker = Checker(port, gold, timeout, others)
        results = []
        try:
            for s in (s for s in STAGE_NAMES if s in stages):
                results.append(getattr(checker, s)())
        except BrokenAdapter as e:  # the stages done so far still go into --json / --report
            e.partial = PortReport(spec, port.name, golden.case, str(weights), results)
            raise
        finally:
            checker.close()
    return PortReport(spec, port.name, golden.case, str(weights), results)
