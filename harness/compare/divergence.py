"""Find the first module where the bundled MLX model leaves a golden's tolerance.

Two runs of `StableAudio.run` on the golden's injected inputs and settings:

1. free run: every recorded intermediate compared with the golden ("full" metrics). The
   first tensor out of tolerance in the golden's execution order is the first divergence.
2. replay (teacher forcing): the same run, but every module output the golden holds is
   replaced by the golden's tensor right after the module computed it. So each module
   runs on the REFERENCE's input to it: DiT block i on golden block i-1 (with golden context),
   self-attention on golden q/k after RoPE, RoPE on golden q/k-norm, sampler step i on
   golden x of step i-1 and golden v, DiT at step i >= 1 on golden x, decoder layer j on
   golden layer j-1, T5 block i on golden block i-1, the conditioner on golden T5 output.
   Its own output there gives "local" metrics.

A divergence whose module is also out of tolerance on the reference's input is `local` (the
module itself is wrong); otherwise `inherited` (its input was already off, e.g. error
amplified from upstream tensors that were still inside tolerance). "On the reference's input"
holds only where the golden records every input of the module (`lineage.teacher_forced`):
elsewhere the replayed module still read the MLX model's own input, and a failure there is
`local or inherited`, never `local`.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.compare.lineage import teacher_forced
from harness.compare.metrics import Metrics, measure
from harness.golden.store import MANIFEST_FILE, TENSORS_FILE, Golden, group_of
from harness.golden.tolerances import Policy, Tolerance, policy_for
from harness.errors import BadInput

INPUTS = ("input_ids", "attention_mask", "seconds_total", "noise", "step_noise")
LOCAL_OR_INHERITED = "local or inherited"
DTYPES = ("fp32", "fp16")


@dataclass
class Row:
    name: str
    group: str
    shape: tuple[int, ...]
    tolerance: Tolerance
    full: Metrics                 # free run vs golden
    local: Metrics                # replay on the golden's own inputs vs golden
    forced: bool = True           # the golden records every input of the module (lineage)

    @property
    def passed(self) -> bool:
        return self.tolerance.accepts(self.full)

    @property
    def local_passed(self) -> bool:
        return self.tolerance.accepts(self.local)

    @property
    def where(self) -> str:
        """local / local or inherited / inherited (for a row that failed the free run)."""
        if self.local_passed:
            return "inherited"
        return "local" if self.forced else LOCAL_OR_INHERITED


@dataclass
class CaseResult:
    case: str
    producer: str
    dtype: str
    policy: Policy
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def first(self) -> Row | None:
        return next((r for r in self.rows if not r.passed), None)

    @property
    def first_local(self) -> Row | None:
        """First module that is wrong on the reference's own input."""
        return next((r for r in self.rows if not r.local_passed), None)

    def verdict(self) -> str:
        first = self.first
        if first is None:
            worst = min(self.rows, key=lambda r: r.full.snr_db - r.tolerance.snr_db)
            return (f"all {len(self.rows)} tensors within tolerance (smallest margin: "
                    f"{worst.name} SNR {worst.full.snr_db:.1f} dB >= {worst.tolerance.snr_db:g} dB)")
        where = first.where
        line = f"first divergence: {first.name} ({first.tolerance.why_not(first.full)}), {where}"
        if where == "inherited" and self.first_local is not None:
            fl = self.first_local
            line += f"; first local failure: {fl.name} ({fl.tolerance.why_not(fl.local)})"
        return line


def settings_of(golden: Golden) -> tuple[int, str, float]:
    mpath = golden.path / MANIFEST_FILE
    settings = golden.manifest.get("settings")
    if not isinstance(settings, dict):
        raise BadInput(mpath, "lacks field 'settings'")
    for key in ("steps", "sampler", "cfg_scale"):
        if key not in settings:
            raise BadInput(mpath, f"lacks field 'settings.{key}'")
    from harness.model.sampler import SAMPLERS

    steps, sampler, cfg = settings["steps"], settings["sampler"], settings["cfg_scale"]
    if not isinstance(steps, int) or steps < 1:
        raise BadInput(mpath, f"settings.steps must be a positive integer, got {steps!r}")
    if sampler not in SAMPLERS:
        raise BadInput(mpath, f"settings.sampler {sampler!r} is not one of {SAMPLERS}")
    if not isinstance(cfg, (int, float)):
        raise BadInput(mpath, f"settings.cfg_scale must be a number, got {cfg!r}")
    return steps, sampler, float(cfg)


def inputs_of(golden: Golden, model, steps: int) -> dict[str, np.ndarray]:
    """The injected inputs, checked against the model's config (one-line BadInput if off)."""
    tpath = golden.path / TENSORS_FILE
    out = {}
    for key in INPUTS:
        name = f"input.{key}"
        if name not in golden.tensors:
            raise BadInput(tpath, f"lacks input tensor {name}")
        out[key] = golden[name]
    cfg = model.config
    ids, mask = out["input_ids"], out["attention_mask"]
    if ids.dtype.kind not in "iu" or mask.dtype.kind not in "iu":
        raise BadInput(tpath, f"input.input_ids/attention_mask must be integers, got "
                              f"{ids.dtype.name}/{mask.dtype.name}")
    if ids.ndim != 2 or ids.shape[1] != cfg.max_length or mask.shape != ids.shape:
        raise BadInput(tpath, f"input.input_ids {list(ids.shape)} / attention_mask "
                              f"{list(mask.shape)}: the model takes (B, {cfg.max_length})")
    if ids.min() < 0 or ids.max() >= cfg.t5.vocab_size:
        raise BadInput(tpath, f"input.input_ids outside the model's vocabulary 0..{cfg.t5.vocab_size - 1}")
    b = ids.shape[0]
    noise, step_noise, secs = out["noise"], out["step_noise"], out["seconds_total"]
    if noise.ndim != 3 or noise.shape[:2] != (b, cfg.dit.io_channels):
        raise BadInput(tpath, f"input.noise {list(noise.shape)}: the model takes "
                              f"({b}, {cfg.dit.io_channels}, T)")
    if step_noise.ndim != 4 or step_noise.shape[1:] != noise.shape or step_noise.shape[0] < steps - 1:
        raise BadInput(tpath, f"input.step_noise {list(step_noise.shape)}: needs "
                              f"(>= {steps - 1}, {', '.join(map(str, noise.shape))})")
    if secs.shape != (b,):
        raise BadInput(tpath, f"input.seconds_total {list(secs.shape)}: needs ({b},)")
    for key in ("noise", "step_noise", "seconds_total"):
        if out[key].dtype.kind != "f":
            raise BadInput(tpath, f"input.{key} is {out[key].dtype.name}, needs a float type")
    return out


def check_reference_tensors(golden: Golden, names: list[str]) -> None:
    tpath = golden.path / TENSORS_FILE
    for name in names:
        ref = golden[name]
        if ref.dtype.kind != "f":
            raise BadInput(tpath, f"tensor {name} is {ref.dtype.name}; the model produces floats")
        if not np.isfinite(ref).all():
            raise BadInput(tpath, f"tensor {name} holds NaN/Inf")


@contextmanager
def teacher_forcing(reference: dict[str, np.ndarray], path: Path):
    """Make `tap` hand the reference tensor downstream instead of the module's own output.

    Each name is substituted once, at its first call (the DiT's names carry their sampler
    step: `capture.sampler_step`).
    `tap` is imported by name into every model module, so each module global bound to it is
    swapped (and restored); active recorders still see the module's own output.
    """
    import mlx.core as mx

    from harness.model import capture

    original = capture.tap
    used: set[str] = set()

    def forced_tap(module_or_name, x, suffix=None, channels_last=False):
        original(module_or_name, x, suffix, channels_last)
        name = capture.name_of(module_or_name, suffix)
        ref = reference.get(name)
        if ref is None or name in used:
            return x
        used.add(name)
        y = mx.array(ref).astype(x.dtype)
        if channels_last:
            y = y.swapaxes(1, 2)
        if y.shape != x.shape:
            torch_shape = x.swapaxes(1, 2).shape if channels_last else x.shape
            raise BadInput(path / TENSORS_FILE, f"tensor {name}: golden {list(ref.shape)}, "
                                                f"model {list(torch_shape)}")
        return y

    patched = [m for m in list(sys.modules.values())
               if getattr(m, "__dict__", {}).get("tap") is original]
    for m in patched:
        m.tap = forced_tap
    try:
        yield used
    finally:
        for m in patched:
            m.tap = original


def run_model(model, golden: Golden, names: list[str], *, replay: bool) -> dict[str, np.ndarray]:
    """Recorded outputs (torch layout, numpy) of `names` from one run on the golden's inputs."""
    import mlx.core as mx

    from harness.model import pipeline
    from harness.model.capture import recording

    steps, sampler, cfg_scale = settings_of(golden)
    x = inputs_of(golden, model, steps)
    wanted = set(names)
    reference = {n: golden[n] for n in names if n != "sampler.t"}
    forcing = teacher_forcing(reference, golden.path) if replay else nullcontext()
    with recording(keep=wanted.__contains__) as rec, forcing as used:
        latents, audio = model.run(x["input_ids"], x["attention_mask"], x["seconds_total"],
                                   x["noise"], list(x["step_noise"]), steps=steps,
                                   sampler=sampler, cfg_scale=cfg_scale)
        mx.eval(latents, audio, *rec.tensors.values())
    out = {n: np.array(v) for n, v in rec.tensors.items()}
    # The schedule is a tensor of the sampler but no module output: take the one the
    # pipeline actually uses.
    out["sampler.t"] = np.asarray(pipeline.logsnr_schedule(steps))
    if replay and set(reference) - used:
        missed = sorted(set(reference) - used)[0]
        raise RuntimeError(f"teacher forcing never reached {missed}: a model module holds "
                           "capture.tap under another name; import it as `tap`")
    return out


def compare_golden(model, golden: Golden, *, dtype: str = "fp32",
                   policy: Policy | None = None, notes: list[str] | None = None) -> CaseResult:
    """Compare every non-input golden tensor, in the golden's order, free run and replay."""
    policy = policy or policy_for(golden.producer, dtype, golden.preset)
    tpath = golden.path / TENSORS_FILE
    names = [n for n in golden.manifest["order"] if not n.startswith("input.")]
    check_reference_tensors(golden, names)
    tolerances = {}
    for n in names:
        tol = policy.tolerance(n)
        if tol is None:
            raise BadInput(tpath, f"tensor {n} (group {group_of(n)}) has no tolerance in policy "
                                  f"{policy.label}")
        tolerances[n] = tol

    free = run_model(model, golden, names, replay=False)
    for n in names:
        if n not in free:
            raise BadInput(tpath, f"tensor {n} has no counterpart in the MLX model "
                                  "(no module records that name)")
        ref, got = golden[n], free[n]
        if got.shape != ref.shape:
            raise BadInput(tpath, f"tensor {n}: golden {ref.dtype.name}{list(ref.shape)}, "
                                  f"model {got.dtype.name}{list(got.shape)}")
        if got.dtype.kind != "f":
            raise BadInput(tpath, f"tensor {n}: golden {ref.dtype.name}, model {got.dtype.name}")
    replayed = run_model(model, golden, names, replay=True)
    recorded = set(names)
    rows = [Row(n, group_of(n), tuple(golden[n].shape), tolerances[n],
                measure(free[n], golden[n]), measure(replayed[n], golden[n]),
                teacher_forced(n, names, recorded)) for n in names]
    return CaseResult(golden.case, golden.producer, dtype, policy, rows, list(notes or []))


# Weight files whose hash a golden must share with the checkpoint under test (the configs
# are covered by the shape checks; the tokenizer is not used: goldens hold token ids).
HASHED = ("model.safetensors", "t5/model.safetensors")


def checkpoint_hashes(ckpt) -> dict[str, str]:
    files = {"model.safetensors": ckpt.model_file}
    if ckpt.t5_dir is not None:
        files["t5/model.safetensors"] = ckpt.t5_dir / "model.safetensors"
    return {k: _sha256_cached(str(p), p.stat().st_mtime_ns, p.stat().st_size)
            for k, p in files.items() if p.is_file()}


@lru_cache(maxsize=16)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    from harness.weights.load import sha256_file

    return sha256_file(path)


class OtherWeights(BadInput):
    """The golden was recorded from another checkpoint (or records no weights hash)."""


def verify_weights(golden: Golden, ckpt, allow_unverified: bool = False) -> list[str]:
    """BadInput unless the golden was recorded from the checkpoint under test; -> report notes."""
    mpath = golden.path / MANIFEST_FILE
    weights = golden.manifest.get("weights")
    recorded = weights.get("sha256") if isinstance(weights, dict) else None
    if not isinstance(recorded, dict) or "model.safetensors" not in recorded:
        if not allow_unverified:
            raise OtherWeights(mpath, f"records no weights sha256 of model.safetensors (producer "
                                  f"{golden.producer}): cannot tell whether it was made from "
                                  f"{ckpt.model_file}; pass --unverified-weights to compare anyway")
        return [f"weights NOT verified: the golden records no model.safetensors sha256; "
                f"compared with {ckpt.model_file} on request"]
    actual = checkpoint_hashes(ckpt)
    for key in HASHED:
        if key in recorded and recorded[key] != actual.get(key):
            got = actual.get(key)
            raise OtherWeights(mpath, f"recorded for other weights: {key} sha256 "
                                  f"{recorded[key][:16]}..., the checkpoint under test "
                                  f"({ckpt.root}) has {got[:16] + '...' if got else 'none'}")
    return [f"weights verified: {k} sha256 {recorded[k][:16]}..." for k in HASHED if k in recorded]


def compare_case(case_dir: str | Path, model, ckpt, *, dtype: str = "fp32",
                 allow_unverified: bool = False) -> CaseResult:
    """Load and verify a golden case, check it was made from `ckpt`, compare `model` with it."""
    from harness.golden.store import check_golden

    case_dir = Path(case_dir)
    golden = check_golden(case_dir, case_dir.name)
    notes = verify_weights(golden, ckpt, allow_unverified)
    return compare_golden(model, golden, dtype=dtype, notes=notes)
