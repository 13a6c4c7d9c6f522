"""Run every check against each mutant of the tiny model, and against the unmutated model.

Three kinds of check, each run with the mutant applied:

- golden: `compare_golden` on every committed tiny torch golden (`CASES`: pingpong with every
  intermediate at every step, euler, CFG, and a long input). It names the first diverging
  module and whether it is local (teacher-forced: the golden records the module's inputs),
  local or inherited, or inherited. Of the cases that fail, the first with a local verdict
  localizes the mutant (an euler- or CFG-only bug fails only its case; a long-input bug only
  the long one). A mutant that changes a tensor's shape (or drops one) makes the comparison
  refuse the run with BadInput naming the tensor: that counts as caught there, `structural`.
- audio: what a listener would get: the model generates a clip long enough for every audio
  metric (`AUDIO_FRAMES` latent frames, fixed inputs), `write_wav` writes it and it is read
  back; `check_audio` runs on it with the unmutated model's clip as the reference. Synthetic
  tiny weights make noise-like audio that fails some music thresholds by itself (DC, the
  1378/5512 Hz stride combs), so only the checks the clean clip passes count (`heard_by`).
- wav: each case's audio, as the pipeline returns it, written and read back must equal the
  planar audio AND the reference's `output.audio` within the golden's tolerance; a real
  music clip (if the corpus is installed) is written the same way and `check_audio`ed against
  the clip, so speed and channel faults are named on music too.

The control (no mutant) runs the same checks and must pass all of them.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.mutants import CATALOGUE
from harness.mutants.catalogue import io as catalogue_io
from harness.mutants.core import Mutant
from harness.progress import progress

OUTPUT_AUDIO = "output.audio"  # harness.model.pipeline.OUTPUT_AUDIO (imported lazily there)

CASE = "tiny-torch"
# Golden cases every mutant is compared with, in this order (CASE required, others if stored).
CASES = (CASE, "tiny-torch-euler", "tiny-torch-cfg", "tiny-torch-long")
AUDIO_SEED = 1
# The trained tiny model's cases: pingpong with every intermediate, its euler and CFG paths
# (boundaries and the DiT's intermediates at the first step) and 64 frames.
TRAINED_CASES = ("tiny-trained-torch", "tiny-trained-torch-euler", "tiny-trained-torch-cfg",
                 "tiny-trained-torch-long")
# model -> (golden case, latent frames of the clip the audio checks hear). The trained tiny
# model's clip is 160 frames (7.4 s): long enough for the flicker spectrum to resolve 21.5 Hz
# from its neighbours and to cross a 128-frame decode chunk.
MODELS = {"tiny": (CASE, None), "tiny-trained": (TRAINED_CASES[0], 160)}
MUSIC = ("noiz2sa", "stg0", 3.0)
CONTROL = "unmutated"
_TENSOR = re.compile(r"tensor (\S+?)[: ]")


@dataclass
class Outcome:
    name: str
    expected_module: str
    symptom: str
    audible: bool = True
    caught_by: list[str] = field(default_factory=list)
    heard_by: list[str] = field(default_factory=list)   # audio checks on its own output
    localized_to: str | None = None
    where: str | None = None       # local / local or inherited / inherited / structural / wav
    golden: str = ""               # the localizing comparison's verdict
    case: str | None = None        # the golden case that localized it
    verdicts: dict[str, str] = field(default_factory=dict)  # every case's verdict
    seconds: float = 0.0

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)

    @property
    def heard(self) -> bool:
        return bool(self.heard_by)

    @property
    def module(self) -> str | None:
        """The localized module without its sampler step (`...timestep_features@3`)."""
        return None if self.localized_to is None else self.localized_to.split("@")[0]

    @property
    def localized(self) -> bool:
        return self.module == self.expected_module

    def to_dict(self) -> dict:
        return {"name": self.name, "caught": self.caught, "caught_by": self.caught_by,
                "localized_to": self.localized_to, "expected_module": self.expected_module,
                "where": self.where, "golden": self.golden, "case": self.case,
                "verdicts": self.verdicts, "symptom": self.symptom,
                "audible": self.audible, "heard": self.heard, "heard_by": self.heard_by,
                "seconds": round(self.seconds, 3)}


class Bench:
    """The tiny model, its golden, the reference audio and the clean baseline, built once."""

    def __init__(self, checkpoint: Path | None = None, golden_root: Path | None = None,
                 cases: tuple[str, ...] = CASES, model: str = "tiny"):
        """checkpoint: the one the goldens were recorded from (default for `tiny`: the seeded
        one written afresh, so a stale user cache cannot be picked up; for `tiny-trained`: the
        committed trained weights); cases: the golden cases to compare with (the model's own
        case is always among them; `tiny-trained` compares with every stored TRAINED_CASES)."""
        from harness.compare.divergence import verify_weights
        from harness.golden.store import DEFAULT_ROOT, load_golden
        from harness.weights.load import load_model
        from harness.weights.synth import write_checkpoint

        if model not in MODELS:
            raise BadInput(None, f"unknown model {model!r}; known: {', '.join(MODELS)}")
        case, audio_frames = MODELS[model]
        root = golden_root or DEFAULT_ROOT
        if not (root / case).is_dir():
            raise BadInput(root / case, "golden case missing (the mutants run against it)")
        self.tmp = Path(tempfile.mkdtemp(prefix="sao-mutants-"))
        if checkpoint is None:
            from harness.weights.trained import trained_checkpoint

            checkpoint = write_checkpoint("tiny", 0, self.tmp / "tiny-seed0") \
                if model == "tiny" else trained_checkpoint()
        self.model, self.ckpt = load_model(checkpoint)
        primary = CASE if model == "tiny" else case
        wanted = (primary,) + tuple(c for c in cases if c != CASE) if model == "tiny" \
            else TRAINED_CASES
        self.goldens = {c: load_golden(c, root) for c in wanted if (root / c).is_dir()}
        for g in self.goldens.values():
            verify_weights(g, self.ckpt)
        self.golden = self.goldens[primary]
        self.sr = self.model.config.sample_rate
        g = self.golden
        self.ids, self.mask = g["input.input_ids"], g["input.attention_mask"]
        self.secs = g["input.seconds_total"]
        self.noise, self.step_noise = g["input.noise"], list(g["input.step_noise"])
        self.music = _music_clip()

        from harness.audio.check import MIN_SAMPLES
        from harness.bench.plan import fixed_inputs

        cfg = self.model.config
        frames = audio_frames or -(-MIN_SAMPLES // cfg.vae.downsampling_ratio)
        self.audio_inputs = fixed_inputs(cfg, frames, seed=AUDIO_SEED)
        self.clean_signal, self.audio_applicable = self._reference(self.generate_clip())
        self.music_signal, self.music_applicable = (None, None) if self.music is None \
            else self._reference(self.music)

    def _reference(self, clean: np.ndarray):
        """(reference signal, the checks the clean clip passes against itself): only those
        may raise an alarm on a mutant."""
        from harness.audio.check import check_audio, reference_signal

        signal = reference_signal(clean, self.sr)
        return signal, {c.name for c in check_audio(clean, self.sr, reference=signal).checks
                        if c.passed}

    def _run(self, ids, mask, secs, noise, step_noise) -> np.ndarray:
        import mlx.core as mx

        _, audio = self.model.run(ids, mask, secs, noise, step_noise)
        return np.array(audio.astype(mx.float32))

    def generate(self, golden=None) -> np.ndarray:
        """A golden's inputs and settings (default: CASE's): (B, 2, N)."""
        from harness.compare.divergence import settings_of

        g = golden or self.golden
        steps, sampler, cfg_scale = settings_of(g)
        import mlx.core as mx

        _, audio = self.model.run(g["input.input_ids"], g["input.attention_mask"],
                                  g["input.seconds_total"], g["input.noise"],
                                  list(g["input.step_noise"]), steps=steps, sampler=sampler,
                                  cfg_scale=cfg_scale)
        return np.array(audio.astype(mx.float32))

    def generate_clip(self) -> np.ndarray:
        """The first (only) clip of the audio inputs, planar (2, N)."""
        g = self.audio_inputs
        return self._run(g.input_ids, g.attention_mask, g.seconds_total, g.noise,
                         g.step_noise)[0]

    # -- the three checks ------------------------------------------------------------------------

    def golden_check(self, out: Outcome) -> None:
        from harness.compare.divergence import compare_golden

        failed = []  # (case, module, where, verdict) of each failing case, in CASES order
        for case, golden in self.goldens.items():
            try:
                result = compare_golden(self.model, golden)
            except BadInput as e:  # shape change or a missing tensor: named in the message
                found = _TENSOR.search(e.problem)
                if found is None:
                    raise
                out.verdicts[case] = f"refused: {e.problem}"
                failed.append((case, found.group(1), "structural", out.verdicts[case]))
                continue
            out.verdicts[case] = result.verdict()
            if not result.passed:
                failed.append((case, result.first.name, result.first.where, out.verdicts[case]))
        if not failed:
            out.golden = out.verdicts[self.golden.case]
            return
        out.caught_by.append("golden")
        chosen = next((f for f in failed if f[2] in ("local", "structural")), failed[0])
        out.case, out.localized_to, out.where, out.golden = chosen

    def audio_check(self, out: Outcome) -> None:
        from harness.audio.check import check_audio

        clip = self.generate_clip()
        heard = self._roundtrip(clip, "clip.wav")
        if heard.shape != clip.shape:  # a writer that loses samples: compare what is left
            n = min(heard.shape[1], clip.shape[1])
            heard = np.pad(heard[:, :n], [(0, 0), (0, clip.shape[1] - n)])
        failed = check_audio(heard, self.sr, reference=self.clean_signal).failed
        out.heard_by = [n for n in failed if n in self.audio_applicable]
        out.caught_by += [f"audio:{n}" for n in out.heard_by]

    def wav_check(self, out: Outcome) -> None:
        from harness.audio.check import check_audio

        failed: set[str] = set()
        for case, golden in self.goldens.items():
            audio = self.generate(golden)
            reference = golden.tensors.get(OUTPUT_AUDIO)
            for i, a in enumerate(audio):
                back = self._roundtrip(a, f"clip{i}.wav")
                if not (back.shape == a.shape and np.array_equal(back, a, equal_nan=True)):
                    failed.add("roundtrip")
                if reference is not None and not _matches(back, reference[i], golden):
                    failed.add(f"golden:{case}")
        if self.music is not None:
            back = self._roundtrip(self.music, "music.wav")
            if not np.array_equal(back, self.music):
                failed.add("music-roundtrip")
                failed |= {f"music:{n}" for n in
                           check_audio(back, self.sr, reference=self.music_signal).failed
                           if n in self.music_applicable}
        if failed:
            out.caught_by += [f"wav:{n}" for n in sorted(failed)]
            if out.localized_to is None:
                out.localized_to, out.where = catalogue_io.OUTPUT, "wav"

    def _roundtrip(self, audio, name) -> np.ndarray:
        from harness.audio import io  # through the module: the I/O mutants patch write_wav

        path = self.tmp / name
        io.write_wav(path, audio, self.sr, audio.shape[1] / self.sr)
        back, _ = io.load(path, allow_nonfinite=True)
        return back

    # -- one mutant ----------------------------------------------------------------------------

    def run(self, mutant: Mutant | None) -> Outcome:
        t0 = time.perf_counter()
        if mutant is None:
            out = Outcome(CONTROL, "-", "none: the unmutated model")
            self._checks(out)
        else:
            out = Outcome(mutant.name, mutant.expected_module, mutant.symptom, mutant.audible)
            with mutant.apply(self.model, self.ckpt):
                self._checks(out)
        out.seconds = time.perf_counter() - t0
        return out

    def _checks(self, out: Outcome) -> None:
        self.golden_check(out)
        self.audio_check(out)
        self.wav_check(out)


def _matches(back: np.ndarray, reference: np.ndarray, golden) -> bool:
    """The WAV as read back vs the reference's returned audio, under the golden's policy."""
    from harness.compare.metrics import measure
    from harness.golden.tolerances import policy_for

    if back.shape != reference.shape:
        return False
    tol = policy_for(golden.producer, "fp32", golden.preset).tolerance(OUTPUT_AUDIO)
    return tol.accepts(measure(back, reference))


def _music_clip() -> np.ndarray | None:
    from harness.audio import corpus

    source, stem, seconds = MUSIC
    if corpus.needs_packages({source: [stem]}) and corpus.missing_packages((source,)):
        return None
    clip = corpus.load_clip(source, stem, seconds)
    return clip.audio.astype(np.float32)


def heard_table(outcomes: list[Outcome]) -> str:
    """Markdown: per mutant, the audio checks that flag the clip it generates (and, for output
    mutants, the music clip written through its writer)."""
    lines = ["| mutant | audible | heard by (own clip) | music clip through its writer |",
             "|---|---|---|---|"]
    for o in outcomes:
        music = [c.split(":", 2)[-1] for c in o.caught_by if c.startswith("wav:music:")]
        lines.append(f"| {o.name} | {'yes' if o.audible else 'no'} | "
                     f"{', '.join(o.heard_by) or '-'} | {', '.join(music) or '-'} |")
    return "\n".join(lines)


def heard_rows(outcomes: list[dict]) -> dict[str, dict]:
    """Per mutant (from `Outcome.to_dict`s): the golden verdict that caught it and the audio
    checks that heard its clip, split into absolute checks (flicker, band limit, stride combs,
    seams, ...: the clip alone) and checks relative to the unmutated clip."""
    from harness.audio.check import FREE

    rows = {}
    for o in outcomes:
        golden = "-" if "golden" not in o["caught_by"] else \
            f"{o['localized_to']} ({o['where']}, {o['case']})"
        heard = o["heard_by"]
        rows[o["name"]] = {"golden": golden,
                           "absolute": [c for c in heard if c in FREE],
                           "relative": [c for c in heard if c not in FREE]}
    return rows


def heard_before_after(before: list[dict], after: list[dict]) -> str:
    """Markdown: each mutant's golden and audio verdicts on two models (e.g. the synthetic
    `tiny` run's JSON `mutants` and the `tiny-trained` one's), absolute checks in bold."""
    b, a = heard_rows(before), heard_rows(after)

    def heard(row):
        if row is None:
            return "(not run)"
        words = [f"**{c}**" for c in row["absolute"]] + row["relative"]
        return ", ".join(words) or "-"

    lines = ["| mutant | golden, before | heard by, before | golden, after | heard by, after |",
             "|---|---|---|---|---|"]
    for name in list(b) + [n for n in a if n not in b]:
        rb, ra = b.get(name), a.get(name)
        lines.append(f"| {name} | {rb['golden'] if rb else '(not run)'} | {heard(rb)} | "
                     f"{ra['golden'] if ra else '(not run)'} | {heard(ra)} |")
    return "\n".join(lines)


def run_catalogue(names: list[str] | None = None, bench: Bench | None = None,
                  control: bool = True, model: str = "tiny") -> list[Outcome]:
    """Outcomes of the control (first) and of the named mutants (default: all)."""
    mutants = [CATALOGUE[n] if n in CATALOGUE else _unknown(n) for n in names] if names \
        else list(CATALOGUE.values())
    if bench is None:
        progress(f"loading the {model} model and its goldens")
        bench = Bench(model=model)
    outcomes = []
    for i, m in enumerate(([None] if control else []) + mutants):
        progress(f"mutant {i + 1 - control}/{len(mutants)}: {m.name}" if m else
                 "unmutated control")
        outcomes.append(bench.run(m))
    return outcomes


def _unknown(name: str):
    raise BadInput(None, f"unknown mutant {name!r}; known: {', '.join(sorted(CATALOGUE))}")
