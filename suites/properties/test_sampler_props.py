"""logSNR schedule, pingpong / euler on exact straight rectified-flow paths, CFG branch
bookkeeping, and seed determinism of StableAudio.generate."""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.model import pipeline
from harness.model.sampler import cfg_denoiser, logsnr_schedule, sample
from harness.model.tokenizer import Tokenizer
from suites.properties import mutants, oracles
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import PathCase, path_cases, seeds


# -- schedule ----------------------------------------------------------------------------
def check_schedule(schedule, steps: int):
    t = np.asarray(schedule(steps), np.float64)
    assert t.shape == (steps + 1,), f"{steps} steps: {t.shape[0]} times, expected {steps + 1}"
    assert t[0] == 1.0 and t[-1] == 0.0, f"{steps} steps: t[0] = {t[0]}, t[-1] = {t[-1]}"
    assert np.all(np.diff(t) < 0), f"{steps} steps: t not strictly decreasing at {np.argmax(np.diff(t) >= 0)}"
    # The float32 schedule rounds sigmoid(-logsnr): at most one float32 ulp (<= eps·t) away.
    ref = oracles.logsnr_schedule(steps)
    assert_close(f"{steps}-step schedule", t, ref, EPS32 * ref)


@given(st.integers(1, 1000))
@example(1)
@example(8)
@example(1000)
def test_schedule(steps):
    check_schedule(logsnr_schedule, steps)


def test_schedule_8_steps_published_values():
    published = [1.0, 0.993307, 0.982014, 0.952574, 0.880797, 0.731059, 0.5, 0.268941, 0.0]
    assert_close("8-step schedule", logsnr_schedule(8), published, 5e-7)  # 6 printed digits


@pytest.mark.parametrize("schedule", [mutants.linear_schedule, mutants.unclamped_schedule,
                                      mutants.increasing_schedule, mutants.off_by_one_schedule],
                         ids=lambda f: f.__name__)
def test_schedule_catches(schedule):
    assert_detects(check_schedule, schedule, [(1,), (8,), (100,)])


# -- samplers on exact straight paths --------------------------------------------------------
def path_scale(case: PathCase) -> np.ndarray:
    """Elementwise bound on every |x_t| and |v| along the path (in float32 rounding units)."""
    noises = [case.noise] + case.step_noise
    return np.abs(case.x0) + np.max(np.abs(np.stack(noises)), axis=0)


def check_euler_straight(sample_fn, case: PathCase):
    """x_t = (1-t)·x0 + t·eps has constant velocity eps - x0: euler lands on x0 iff its step
    sizes sum to exactly 1 (t from 1 to 0) and each is taken with the right sign."""
    t = logsnr_schedule(case.steps)
    v = mx.array(case.noise - case.x0)
    out = np.array(sample_fn(lambda x, tt: v, mx.array(case.noise), t, "euler"))
    # each step rounds x + dt·v twice: <= 2·eps·(|x0| + |eps|) per step, accumulated.
    assert_close(f"{case} euler", out, case.x0, (2 * case.steps + 2) * EPS32 * path_scale(case))


def check_pingpong_path(sample_fn, case: PathCase):
    """With fresh noise eps_i per step, a denoiser that knows x0 returns (x - x0)/t; pingpong
    must then sit on x_{t_{i+1}} = (1 - t_{i+1})·x0 + t_{i+1}·eps_i after every step and end on x0.
    (The end point alone cannot see a wrong re-noising: the next step removes it again.)"""
    t = logsnr_schedule(case.steps)
    x0 = mx.array(case.x0)
    states = []
    out = sample_fn(lambda x, tt: (x - x0) / tt[:, None, None], mx.array(case.noise), t,
                    "pingpong", [mx.array(n) for n in case.step_noise],
                    lambda i, x: states.append(np.array(x)))
    assert len(states) == case.steps, f"{case}: {len(states)} steps taken"
    # no accumulation: every step re-derives x0; a handful of float32 roundings of |x0|+|eps|.
    tol = 8 * EPS32 * path_scale(case)
    for i in range(case.steps - 1):
        want = (1 - np.float64(t[i + 1])) * case.x0 + np.float64(t[i + 1]) * case.step_noise[i]
        assert_close(f"{case} pingpong state after step {i}", states[i], want, tol)
    assert_close(f"{case} pingpong result", np.array(out), case.x0, tol)


def check_pingpong_one_path(sample_fn, case: PathCase):
    """All noise equal to the start noise eps: the path x_t = (1-t)·x0 + t·eps is one straight
    line with constant velocity eps - x0, so that constant is an exact denoiser; every pingpong
    state must lie on the line and the result is x0."""
    t = logsnr_schedule(case.steps)
    v = mx.array(case.noise - case.x0)
    states = []
    out = sample_fn(lambda x, tt: v, mx.array(case.noise), t, "pingpong",
                    [mx.array(case.noise)] * (case.steps - 1), lambda i, x: states.append(np.array(x)))
    tol = 8 * EPS32 * path_scale(case)
    for i, x in enumerate(states[:-1]):
        want = (1 - np.float64(t[i + 1])) * case.x0 + np.float64(t[i + 1]) * case.noise
        assert_close(f"{case} pingpong (one path) after step {i}", x, want, tol)
    assert_close(f"{case} pingpong (one path) result", np.array(out), case.x0, tol)


def check_visits_schedule(sample_fn, sampler: str, case: PathCase):
    """The denoiser is called once per step, at t_0 .. t_{N-1} in order, with a (B,) t: with
    t_0 = 1 and t_N = 0 the step sizes t_i - t_{i+1} then sum to 1 for both samplers."""
    t = logsnr_schedule(case.steps)
    seen = []

    def denoise(x, tt):
        assert tt.shape == (x.shape[0],), f"t shape {tt.shape} for batch {x.shape[0]}"
        seen.append(np.array(tt))
        return mx.zeros_like(x)

    sample_fn(denoise, mx.array(case.noise), t, sampler, [mx.array(n) for n in case.step_noise])
    got = np.array([s[0] for s in seen])
    assert got.shape == (case.steps,) and np.array_equal(got, t[:-1]), \
        f"{case} {sampler}: denoiser called at {got[:6]}..., schedule {t[:6]}..."


PATH_EXAMPLES = [PathCase(1, seed=0), PathCase(2, seed=1), PathCase(8, batch=2, seed=2),
                 PathCase(50, seed=3)]


@given(path_cases())
@example(PATH_EXAMPLES[2])
@example(PathCase(1000, channels=2, frames=3, seed=4))
def test_euler_straight_path(case):
    check_euler_straight(sample, case)


@given(path_cases())
@example(PATH_EXAMPLES[0])
@example(PATH_EXAMPLES[2])
@example(PathCase(1000, channels=2, frames=3, seed=4))
def test_pingpong_straight_path(case):
    check_pingpong_path(sample, case)


@given(path_cases())
@example(PATH_EXAMPLES[2])
def test_pingpong_one_straight_path(case):
    check_pingpong_one_path(sample, case)


@given(st.sampled_from(["pingpong", "euler"]), path_cases(max_steps=50))
@example("pingpong", PATH_EXAMPLES[2])
def test_sampler_visits_schedule(sampler, case):
    check_visits_schedule(sample, sampler, case)


@pytest.mark.parametrize("check,fn", [
    (check_euler_straight, mutants.SAMPLE_EULER_SIGN),
    (check_pingpong_path, mutants.SAMPLE_X0_SIGN),
    (check_pingpong_path, mutants.SAMPLE_RENOISE_T_I),
    (check_pingpong_path, mutants.SAMPLE_REUSED_NOISE),
    (check_pingpong_one_path, mutants.SAMPLE_X0_SIGN),
    (check_pingpong_one_path, mutants.SAMPLE_RENOISE_T_I),
], ids=lambda v: getattr(v, "__name__", ""))
def test_sampler_catches(check, fn):
    assert_detects(check, fn, [(c,) for c in PATH_EXAMPLES])


@pytest.mark.parametrize("sampler", ["pingpong", "euler"])
def test_visits_schedule_catches(sampler):
    assert_detects(check_visits_schedule, mutants.SAMPLE_EVAL_AT_NEXT,
                   [(sampler, c) for c in PATH_EXAMPLES])


# -- classifier-free guidance -------------------------------------------------------------------
class RecordingDiT:
    """A cheap stand-in DiT, linear in each conditioning input, that logs every call."""

    def __init__(self):
        self.calls: list[dict] = []

    @staticmethod
    def numpy(x, t, cross, global_cond):
        return (0.5 * x + t[:, None, None] + 0.1 * cross.sum(axis=(1, 2))[:, None, None]
                + 0.2 * global_cond.sum(-1)[:, None, None])

    def __call__(self, x, t, cross, global_cond):
        self.calls.append({"batch": x.shape[0], "cross": np.array(cross),
                           "global": np.array(global_cond)})
        return (0.5 * x + t[:, None, None] + 0.1 * cross.sum(axis=(1, 2))[:, None, None]
                + 0.2 * global_cond.sum(-1)[:, None, None])


def cfg_inputs(seed: int, batch: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 4)).astype(np.float32)
    cross = rng.standard_normal((batch, 5, 6)).astype(np.float32)
    glob = rng.standard_normal((batch, 6)).astype(np.float32)
    return x, cross, glob


def check_cfg_one_is_single_branch(make, seed: int, batch: int, steps: int):
    """cfg_scale 1: one DiT call per step, batch B, the real cross condition (no zeroed copy)."""
    x, cross, glob = cfg_inputs(seed, batch)
    dit = RecordingDiT()
    sample(make(dit, mx.array(cross), mx.array(glob), 1.0), mx.array(x),
           logsnr_schedule(steps), "euler")
    assert len(dit.calls) == steps, f"{len(dit.calls)} DiT calls for {steps} steps"
    for c in dit.calls:
        assert c["batch"] == batch, f"DiT batch {c['batch']} at cfg 1 (B = {batch})"
        assert np.array_equal(c["cross"], cross), "cfg 1 evaluated a modified cross condition"


def check_cfg_combination(make, seed: int, batch: int, scale: float):
    """v = uncond + (cond - uncond)·scale, uncond = zeroed cross, global cond NOT nulled."""
    x, cross, glob = cfg_inputs(seed, batch)
    t = np.full((batch,), 0.7, np.float32)
    v = np.array(make(RecordingDiT(), mx.array(cross), mx.array(glob), scale)(mx.array(x), mx.array(t)))
    cond = RecordingDiT.numpy(x.astype(np.float64), t, cross.astype(np.float64), glob.astype(np.float64))
    uncond = RecordingDiT.numpy(x.astype(np.float64), t, 0 * cross.astype(np.float64), glob.astype(np.float64))
    ref = uncond + (cond - uncond) * scale
    # a few float32 roundings of terms up to |cond| + |uncond|, amplified by the scale.
    tol = 16 * EPS32 * (1 + abs(scale)) * (np.abs(cond) + np.abs(uncond) + 1)
    assert_close(f"cfg {scale:g} seed {seed}", v, ref, tol)


@given(seeds, st.integers(1, 3), st.integers(1, 12))
def test_cfg_one_single_branch(seed, batch, steps):
    check_cfg_one_is_single_branch(cfg_denoiser, seed, batch, steps)


@given(seeds, st.integers(1, 3), st.floats(-4, 12).filter(lambda s: s != 1.0))
@example(0, 1, 6.0)
def test_cfg_combination(seed, batch, scale):
    check_cfg_combination(cfg_denoiser, seed, batch, scale)


def test_cfg_catches():
    assert_detects(check_cfg_one_is_single_branch, mutants.cfg_always_both, [(0, 1, 8), (1, 2, 3)])
    for wrong in (mutants.cfg_nulled_global, mutants.cfg_swapped):
        assert_detects(check_cfg_combination, wrong, [(0, 1, 6.0), (1, 2, 3.0)])


# -- the tiny model: DiT calls in generate, and seeds --------------------------------------------
GEN = dict(steps=3, frames=4)  # pingpong with per-step noise, a few latent frames


@pytest.fixture(scope="module")
def prompt(tiny_checkpoint, tiny_model):
    tok = Tokenizer.from_file(tiny_checkpoint / "t5" / "spiece.model")
    return tok.encode(["128 BPM tech house drum loop"], tiny_model.config.max_length)


@contextmanager
def counting_dit(make):
    """generate() with its cfg_denoiser replaced by `make` around a DiT that logs batches."""
    batches: list[int] = []

    def wrapped(dit, cross, global_cond, scale, *a):
        def counted(x, t, c, g):
            batches.append(x.shape[0])
            return dit(x, t, c, g)
        return make(counted, cross, global_cond, scale, *a)

    with mock.patch.object(pipeline, "cfg_denoiser", wrapped):
        yield batches


def check_generate_cfg1(make, model, prompt):
    with counting_dit(make) as batches:
        model.generate(*prompt, 1.0, cfg_scale=1.0, seed=0, **GEN)
    assert batches == [1] * GEN["steps"], f"DiT batches {batches} for {GEN['steps']} steps at cfg 1"


def test_generate_cfg1_one_dit_call_per_step(tiny_model, prompt):
    check_generate_cfg1(cfg_denoiser, tiny_model, prompt)


def test_generate_cfg1_catches(tiny_model, prompt):
    assert_detects(check_generate_cfg1, mutants.cfg_always_both, [(tiny_model, prompt)])


def check_seed_determinism(gen, seed_a: int, seed_b: int):
    a1, a2 = gen(seed_a), gen(seed_a)
    assert a1.dtype == np.float32 and a1.tobytes() == a2.tobytes(), \
        f"seed {seed_a}: two runs differ (max {np.abs(a1 - a2).max():.3g})"
    if seed_a != seed_b:
        b = gen(seed_b)
        assert not np.array_equal(a1, b), f"seeds {seed_a} and {seed_b} gave identical audio"


@settings(max_examples=max(3, settings().max_examples // 8))  # 3 generations per example
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
@example(99, 100)
def test_generate_seed_determinism(tiny_model, prompt, seed_a, seed_b):
    check_seed_determinism(
        lambda s: tiny_model.generate(*prompt, 1.0, seed=s, **GEN).audio, seed_a, seed_b)


@pytest.mark.parametrize("factory", [mutants.generate_unseeded, mutants.generate_seed_ignored],
                         ids=lambda f: f.__name__)
def test_seed_determinism_catches(factory, tiny_model, prompt):
    assert_detects(check_seed_determinism, factory(tiny_model, *prompt, **GEN), [(99, 100), (1, 2)])
