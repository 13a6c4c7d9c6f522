"""The gate's stages: structure, load, weights, parity, drift, audio.

Each method fills one `Stage`. A `BadInput` raised while judging the candidate is the
candidate's fault (the stage fails with that one line); any other exception is an error
of the stage (also a reject; see runner.py). The strict loader in harness.weights does the
validating: this module only runs its pieces one by one so every fault becomes a reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.compare import weightdiff
from harness.gate import drift
from harness.gate.result import FAIL, INFO, PASS, SKIP, GateResult, Stage
from harness.weights.load import Checkpoint, load_official, load_t5, open_checkpoint, sha256_file
from harness.weights.safetensors_io import dtype_names, read_header, read_safetensors
from harness.model.prefixes import CHECKPOINT_GROUPS
from harness.weights.validate import expected_checkpoint, problems

# Order keeps one model in memory at a time (full size: ~2.4 GB each): the tensor diff
# before any model, then the approved model's probe run, then the candidate's model.
STAGES = ("structure", "weights", "baseline", "load", "parity", "drift", "audio")
REQUIRED = {"same": ("structure", "weights", "baseline", "load", "drift"),
            "update": ("structure", "load", "parity", "audio")}
MAX_REASONS = 8  # per stage; the report's tables list everything


@dataclass(frozen=True)
class Options:
    candidate: Path
    baseline: Path | None = None
    expect: str = "same"
    golden_dir: Path | None = None     # None: the committed golden/ (may be absent)
    parity: bool = True                # False: --no-parity, written into the report
    frames: int | None = None          # latent frames of the drift/audio probes
    timeout: float | None = None
    audio_thresholds: Path | None = None


class OptionError(BadInput):
    """One of the gate's own options does not fit the candidate's model (exit 2, no verdict)."""


def _limited(reasons: list[str]) -> list[str]:
    if len(reasons) <= MAX_REASONS:
        return reasons
    return reasons[:MAX_REASONS] + [f"... and {len(reasons) - MAX_REASONS} more"]


def _nonfinite(name: str, a: np.ndarray, dtype: str) -> str | None:
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return None
    nan, pinf, ninf = int(np.isnan(a).sum()), int(np.isposinf(a).sum()), int(np.isneginf(a).sum())
    parts = [f"{n} {what}" for n, what in ((nan, "NaN"), (pinf, "+Inf"), (ninf, "-Inf")) if n]
    why = " (F16 overflow: |x| > 65504 does not fit fp16)" if dtype == "F16" and pinf + ninf else ""
    return f"tensor {name}: {', '.join(parts)} values{why}"


def _data_layout(path: Path, header: dict, offset: int) -> list[str]:
    """Sizes: the tensors must tile the data section exactly (no holes, no trailing bytes)."""
    size = path.stat().st_size
    spans = sorted(tuple(e["data_offsets"]) for e in header.values())
    out, end = [], 0
    for a, b in spans:
        if a > end:
            out.append(f"{a - end} unreferenced bytes in the data section at offset {end}")
        end = max(end, b)
    if offset + end < size:
        out.append(f"{size - offset - end} trailing bytes after the last tensor")
    return out


class Gate:
    """One gate run; stages are methods called in order by the runner."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.result = GateResult(opts.expect, REQUIRED[opts.expect])
        self.base: Checkpoint | None = None
        self.ckpt: Checkpoint | None = None
        self.tensors: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, str] = {}
        self.model = None
        self.rounding = "fp32"
        self.probe = None
        self.cand_out = None
        self.base_out = None

    # -- before any stage: the approved checkpoint must be valid (else exit 2) ------------
    def prepare(self) -> None:
        opts = self.opts
        if not Path(opts.candidate).exists():
            raise BadInput(opts.candidate, "no such file or directory (the candidate)")
        if opts.baseline is not None:
            self.base = open_checkpoint(opts.baseline)
            load_official(self.base)  # strict; BadInput names the approved file
            if self.base.t5_dir is not None:
                load_t5(self.base)
            self.result.subjects["baseline"] = self._describe(self.base)

    def _describe(self, ckpt: Checkpoint) -> dict:
        d = {"path": str(ckpt.model_file), "sha256": sha256_file(ckpt.model_file),
             "preset": ckpt.config.preset}
        if ckpt.t5_dir is not None and (ckpt.t5_dir / "model.safetensors").exists():
            d["t5_sha256"] = sha256_file(ckpt.t5_dir / "model.safetensors")
        return d

    def _resolve(self, st: Stage) -> Checkpoint:
        """The candidate: a checkpoint dir, or a weight file. A bare model.safetensors (no
        model_config.json beside it) borrows the approved checkpoint's config and T5."""
        path, base = Path(self.opts.candidate), self.base
        if path.is_file() and not (path.parent / "model_config.json").exists() and base:
            st.rows.append({"item": "config", "value": f"none beside {path.name}: using the "
                                                       f"approved checkpoint's config and T5"})
            return Checkpoint(path.parent, path, base.config, base.t5_dir)
        ckpt = open_checkpoint(path)
        if ckpt.t5_dir is None and base is not None and base.t5_dir is not None:
            # Like with like: the borrowed T5's own config, not t5-base's defaults (which
            # would fail every T5 shape of a smaller encoder).
            st.rows.append({"item": "t5", "value": f"none beside the candidate: using the "
                                                   f"approved checkpoint's T5 ({base.t5_dir}) "
                                                   "and tokenizer"})
            ckpt = Checkpoint(ckpt.root, ckpt.model_file,
                              replace(ckpt.config, t5=base.config.t5), base.t5_dir)
        elif ckpt.t5_dir is not None:
            st.rows.append({"item": "t5", "value": f"the candidate's own ({ckpt.t5_dir})"})
        return ckpt

    # -- stages -------------------------------------------------------------------------
    def structure(self, st: Stage) -> None:
        self.ckpt = ckpt = self._resolve(st)
        path = ckpt.model_file
        # The header (strict: layout tiles the data exactly) and the key set and shapes are
        # judged before any data byte is read or hashed: a header claiming a 1 TiB tensor
        # is refused from its size, not streamed.
        header, _, offset = read_header(path)  # pickle, zip, truncation, bad header or layout
        for p in _data_layout(path, header, offset):
            st.fail(f"{path}: {p}")
        shapes = {k: tuple(v["shape"]) for k, v in header.items()}
        self.dtypes = {k: v["dtype"] for k, v in header.items()}
        expected = expected_checkpoint(ckpt.config)
        for p in problems(path, shapes, self.dtypes, expected):
            st.fail(f"{path}: {p}")
        if st.status == FAIL:
            st.reasons[:] = _limited(st.reasons)
            return
        self.result.subjects["candidate"] = self._describe(ckpt)
        self.tensors = read_safetensors(path, check_finite=False)
        for name, a in self.tensors.items():
            bad = _nonfinite(name, a, self.dtypes[name])
            if bad:
                st.fail(f"{path}: {bad}")
        for g in CHECKPOINT_GROUPS:
            keys = [k for k in self.tensors if k.startswith(g)]
            dts = Counter(self.dtypes[k] for k in keys)
            off = sorted(k for k in keys if k in expected and self.dtypes[k] != expected[k].dtype)
            st.rows.append({"item": g.rstrip("."), "value": f"{len(keys)} tensors, "
                            f"{sum(self.tensors[k].size for k in keys):,} params, "
                            + ", ".join(f"{d} x{n}" for d, n in dts.items())
                            + (f" ({len(off)} not in the official dtype)" if off else "")})
        if ckpt.t5_dir is not None:
            try:
                t5 = load_t5(ckpt)
                st.rows.append({"item": "t5", "value": f"{len(t5)} tensors, valid"})
            except BadInput as e:
                st.fail(str(e))
            self._tokenizer(st, ckpt)
        else:
            st.rows.append({"item": "t5", "value": "absent"})
        st.reasons[:] = _limited(st.reasons)
        if st.status != FAIL:
            st.status, st.summary = PASS, (f"{len(self.tensors)} tensors: official key set, "
                                           "shapes, float dtypes, finite values, exact layout")

    def _tokenizer(self, st: Stage, ckpt: Checkpoint) -> None:
        from harness.model.tokenizer import Tokenizer

        if not ckpt.spiece.exists():
            st.fail(f"{ckpt.spiece}: no such file (the T5 tokenizer)")
            return
        try:
            tok = Tokenizer.from_file(ckpt.spiece)
        except BadInput as e:
            st.fail(str(e))
            return
        if tok.vocab_size > ckpt.config.t5.vocab_size:
            st.fail(f"{ckpt.spiece}: {tok.vocab_size} pieces, more than the T5 vocabulary "
                    f"({ckpt.config.t5.vocab_size})")
        st.rows.append({"item": "tokenizer", "value": f"{tok.vocab_size} pieces"})

    def baseline(self, st: Stage) -> None:
        """The approved model on the fixed probes (its outputs are what drift compares to)."""
        self.tensors = {}  # the candidate's numpy copy (~2 GB full size) is not needed again
        if self.base is None:
            st.status, st.summary = SKIP, "no --baseline"
            return
        if self.ckpt.config != self.base.config:
            if self.opts.expect == "same":
                st.fail("model config differs from the approved one")
            else:
                st.status, st.summary = SKIP, "model config differs from the approved one"
            return
        self._probe()
        self.base_out = baseline_outputs(self.base, self.probe)
        p = self.probe
        st.status, st.summary = PASS, (f"approved model run on {p.noise.shape[0]} prompts, "
                                       f"{p.frames} latent frames, {len(p.t) - 1} steps")

    def load(self, st: Stage) -> None:
        import mlx.core as mx

        from harness.model.pipeline import StableAudio
        from harness.weights.load import mlx_weights

        ckpt = self.ckpt
        if ckpt.t5_dir is None:
            st.fail("no T5 encoder (t5/ with config.json, model.safetensors, spiece.model) "
                    "beside the candidate or the approved checkpoint: the model cannot run")
            return
        model = StableAudio(ckpt.config)
        weights = mlx_weights(ckpt)  # the strict loader: BadInput on any fault
        try:
            model.load_weights([(k, mx.array(v).astype(mx.float32)) for k, v in weights.items()],
                               strict=True)
        except ValueError as e:
            st.fail(f"strict load into the MLX model: {e}")
            return
        mx.eval(model.parameters())
        self.model = model
        st.status, st.summary = PASS, f"{len(weights)} arrays loaded strictly into StableAudio"

    def weights(self, st: Stage) -> None:
        if self.base is None:
            st.status, st.summary = SKIP, "no --baseline"
            return
        same = self.opts.expect == "same"
        if self.ckpt.config != self.base.config:
            msg = "model config differs from the approved one: not comparable tensor by tensor"
            if same:
                st.fail(msg)
            else:
                st.status, st.required, st.summary = SKIP, False, msg
            return
        base = read_safetensors(self.base.model_file)
        base_dtypes = dtype_names(self.base.model_file)
        diffs = weightdiff.diff_weights(self.tensors, self.dtypes, base, base_dtypes)
        del base
        diffs += self._t5_diffs()
        counts = weightdiff.summarize(diffs)
        if self.ckpt.spiece and self.base.spiece and self.ckpt.spiece != self.base.spiece:
            if self.ckpt.spiece.read_bytes() != self.base.spiece.read_bytes():
                st.reasons.append(f"{self.ckpt.spiece}: tokenizer differs from the approved one")
        changed = [d for d in diffs if d.kind == weightdiff.CHANGED]
        coarse = {d.rounding for d in diffs if d.kind in (weightdiff.ROUNDED, weightdiff.REPARAM)}
        self.rounding = "bf16" if "BF16" in coarse else "fp16" if "F16" in coarse else "fp32"
        st.rows = [d.to_dict() for d in sorted(diffs, key=lambda d: d.snr_db)
                   if d.kind != weightdiff.IDENTICAL]
        st.data["counts"] = counts
        st.summary = (", ".join(f"{n} {k}" for k, n in counts.items() if n)
                      + f"; tolerance class {self.rounding}")
        st.reasons += [f"{d.name}: {d.detail} (SNR {d.snr_db:.1f} dB vs the approved tensor)"
                       for d in sorted(changed, key=lambda d: d.snr_db)]
        if not same:
            st.status, st.required = INFO, False
            st.reasons.clear()
            return
        st.reasons[:] = _limited(st.reasons)
        st.status = FAIL if st.reasons else PASS

    def _t5_diffs(self) -> list:
        c, b = self.ckpt.t5_dir, self.base.t5_dir
        if c is None or b is None or c.resolve() == b.resolve():
            return []
        cp, bp = c / "model.safetensors", b / "model.safetensors"
        ct, bt = read_safetensors(cp), read_safetensors(bp)
        if set(ct) != set(bt) or any(ct[k].shape != bt[k].shape for k in ct):
            return [weightdiff.TensorDiff("t5", weightdiff.CHANGED, "T5 key set or shapes differ",
                                          float("-inf"), float("inf"))]
        diffs = weightdiff.diff_weights(ct, dtype_names(cp), bt, dtype_names(bp))
        for d in diffs:
            d.name = f"t5:{d.name}"
        return diffs

    def parity(self, st: Stage) -> None:
        from harness.golden import store
        from harness.compare.divergence import compare_golden

        opts, same = self.opts, self.opts.expect == "same"
        if not opts.parity:
            st.status, st.required = SKIP, False
            st.summary = "waived by --no-parity"
            self.result.notes.append("parity against the reference's goldens was waived "
                                     "(--no-parity)")
            return
        sha = self.result.subjects["candidate"]["sha256"]
        root = Path(opts.golden_dir) if opts.golden_dir else store.DEFAULT_ROOT
        cases = []
        for case_dir in (store.case_dirs(root) if root.is_dir() else []):
            manifest = store._read_manifest(case_dir)  # unreadable: BadInput -> reject
            weights = manifest.get("weights") or {}
            if (weights.get("sha256") or {}).get("model.safetensors") == sha:
                cases.append((case_dir, manifest))
        if not cases:
            msg = f"no goldens recorded by the reference for sha256 {sha[:16]}... in {root}"
            if same:
                st.status, st.required, st.summary = SKIP, False, msg + " (drift vs the approved " \
                                                                        "checkpoint stands in)"
            else:
                st.fail(msg + ": record them (`sao-harness golden record`) or pass --no-parity")
            return
        t5_sha = self.result.subjects["candidate"].get("t5_sha256")
        results = []
        for case_dir, manifest in cases:
            want = manifest["weights"]["sha256"].get("t5/model.safetensors")
            if want and t5_sha and want != t5_sha:
                st.fail(f"golden {case_dir.name} was recorded with T5 sha256 {want[:16]}..., "
                        f"the candidate runs with {t5_sha[:16]}...")
                continue
            golden = store.check_golden(case_dir)  # every tensor hash; BadInput -> reject
            res = compare_golden(self.model, golden)
            results.append(res)
            if not res.policy.calibrated and res.policy.label not in self.result.notes:
                self.result.notes.append(f"tolerance policy {res.policy.label}")
            st.rows.append({"case": res.case, "producer": res.producer,
                            "policy": res.policy.label, "tensors": len(res.rows),
                            "passed": res.passed, "verdict": res.verdict()})
            if not res.passed:
                st.fail(f"golden {res.case}: {res.verdict()}")
        st.data["cases"] = results
        if st.status != FAIL:
            st.status = PASS
        st.summary = f"{len(results)} golden case(s) for sha256 {sha[:16]}...: " + (
            "all within tolerance" if st.status == PASS else "divergence")

    def drift(self, st: Stage) -> None:
        same = self.opts.expect == "same"
        self.cand_out = drift.run_probes(self.model, self.probe, self.base_out)
        limits = drift.tolerances(self.rounding) if same else None
        rows = drift.compare(self.cand_out, self.base_out, limits)
        st.rows = [r.to_dict() for r in rows]
        st.data["modules"] = drift.module_snr(self.cand_out, self.base_out)
        st.data["limits"] = limits
        worst = {}
        for r in rows:
            if r.stage not in worst or r.snr_db < worst[r.stage].snr_db:
                worst[r.stage] = r
        st.summary = "worst SNR per stage: " + ", ".join(
            f"{s} {r.snr_db:.1f} dB" for s, r in worst.items())
        if not same:
            st.status, st.required = INFO, False
            st.summary += " (reported; retrained weights are expected to drift)"
            return
        st.summary += f" (tolerance class {self.rounding})"
        for s, r in worst.items():
            if not r.passed:
                st.fail(f"{s}: {r.name} SNR {r.snr_db:.1f} dB < {r.min_snr_db:g} dB "
                        f"(--expect same, {self.rounding} tolerance)")
        if st.status != FAIL:
            st.status = PASS

    def _probe(self) -> None:
        if self.probe is None:
            cfg = self.ckpt.config
            spiece = (self.base or self.ckpt).spiece
            if self.opts.frames is not None and self.opts.frames > cfg.latent_frames:
                # Past the model's own length the probes' memory grows without bound (MLX
                # aborts the process when an allocation fails): refuse, never a verdict.
                raise OptionError(None, f"--frames {self.opts.frames} exceeds this model's "
                                        f"length of {cfg.latent_frames} latent frames")
            self.probe = drift.make_probe(cfg, spiece, self.opts.frames or drift.default_frames(cfg))

    def audio(self, st: Stage) -> None:
        from harness.audio.check import check_audio, thresholds

        same = self.opts.expect == "same"
        if same:
            st.required = False
        self._probe()
        if self.cand_out is None:  # no drift stage ran: only the end-to-end run is needed
            self.cand_out = drift.run_probes(self.model, self.probe, isolated=False)
        audio = self.cand_out.tensors["audio"]
        st.data["audio"], st.data["sr"] = audio, self.ckpt.config.sample_rate
        if self.base_out is not None:
            st.data["reference"] = self.base_out.tensors["audio"]
        sr = self.ckpt.config.sample_rate
        n = audio.shape[-1]
        if n < drift.MIN_AUDIO_SAMPLES:
            ratio = self.ckpt.config.vae.downsampling_ratio
            msg = (f"generated clips hold {n} samples; the audio checks need >= "
                   f"{drift.MIN_AUDIO_SAMPLES} (--frames >= {-(-drift.MIN_AUDIO_SAMPLES // ratio)})")
            if same:
                st.status, st.summary = SKIP, msg
            else:
                st.fail(msg)
            return
        limits = thresholds(self.opts.audio_thresholds) if self.opts.audio_thresholds else None
        failed = []
        for b in range(audio.shape[0]):
            rep = check_audio(audio[b], sr, limits=limits)
            for c in rep.checks:
                st.rows.append({"clip": b, "prompt": drift.PROMPTS[b], **c.to_dict()})
                if not c.passed:
                    failed.append(f"clip {b} ({drift.PROMPTS[b]!r}): {c}")
        n_checks = len(st.rows)
        st.summary = f"{n_checks - len(failed)}/{n_checks} checks pass on {audio.shape[0]} clips " \
                     f"of {n / sr:.2f} s"
        if same:
            st.status = INFO
            if failed:
                st.summary += " (reported only under --expect same: the approved model's audio " \
                              "is the reference)"
            return
        st.reasons += _limited(failed)
        st.status = FAIL if failed else PASS


_BASELINE_CACHE: dict[tuple, drift.Outputs] = {}


def baseline_outputs(base: Checkpoint, probe) -> drift.Outputs:
    """The approved model's probe outputs; reused within a process for the same files."""
    from harness.weights.load import load_model

    import hashlib

    t5 = base.t5_dir / "model.safetensors" if base.t5_dir else None
    key = (sha256_file(base.model_file), sha256_file(t5) if t5 else None,
           hashlib.sha256(probe.ids.tobytes() + probe.noise.tobytes()).hexdigest())
    if key not in _BASELINE_CACHE:
        import mlx.core as mx

        model, _ = load_model(base.model_file)
        _BASELINE_CACHE.clear()
        _BASELINE_CACHE[key] = drift.run_probes(model, probe)
        del model
        mx.clear_cache()  # the approved model's buffers, before the candidate runs
    return _BASELINE_CACHE[key]
