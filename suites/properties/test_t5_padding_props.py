"""T5 conditioner padding on the tiny model: padded positions are zero, real positions do not
depend on how much padding follows (or what ids sit under the mask), 64 tokens + 1 seconds token."""

from __future__ import annotations

from dataclasses import dataclass, field

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.model.config import TINY
from harness.model.tokenizer import EOS_ID, PAD_ID, Tokenizer
from suites.properties import mutants
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import seeds


@dataclass
class PadCase:
    """`tokens` real ids (EOS last) followed by pad_a or pad_b masked positions; the masked
    ids are PAD in the first layout and junk in the second."""

    tokens: int
    pad_a: int
    pad_b: int
    batch: int = 1
    seed: int = 0
    vocab: int = 1024
    ids: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self.ids = rng.integers(2, self.vocab, (self.batch, self.tokens)).astype(np.int32)
        self.ids[:, -1] = EOS_ID
        self.junk = rng.integers(0, self.vocab, (self.batch, self.pad_b)).astype(np.int32)

    def layout(self, which: str) -> tuple[mx.array, mx.array]:
        pad = self.pad_a if which == "a" else self.pad_b
        fill = (np.full((self.batch, pad), PAD_ID, np.int32) if which == "a" else self.junk)
        ids = np.concatenate([self.ids, fill], axis=1)
        mask = np.concatenate([np.ones_like(self.ids), np.zeros((self.batch, pad), np.int32)], axis=1)
        return mx.array(ids), mx.array(mask)


@st.composite
def pad_cases(draw, max_len: int = 64):
    n = draw(st.integers(1, max_len))
    return PadCase(n, draw(st.integers(0, max_len - n)), draw(st.integers(0, 128 - n)),
                   draw(st.integers(1, 2)), draw(seeds))


@pytest.fixture(scope="module")
def prompt(tiny_model):
    return tiny_model.conditioner.conditioners["prompt"]


def check_padding_zero(encode, case: PadCase):
    for which in "ab":
        ids, mask = case.layout(which)
        h = np.array(encode(ids, mask))
        pad = h[:, case.tokens:]
        assert np.all(pad == 0), (f"{case} layout {which}: {int((pad != 0).sum())} nonzero values "
                                  f"at padded positions (max |h| {np.abs(pad).max():.3g})")


def check_padding_invariance(encode, case: PadCase):
    ha = np.array(encode(*case.layout("a")))[:, : case.tokens]
    hb = np.array(encode(*case.layout("b")))[:, : case.tokens]
    # Masked keys get exp(finfo.min) = 0 exactly, so only the summation order may differ, and
    # a BLAS (OpenBLAS) picks its blocking by matrix shape: the standard GEMM bound n·eps with
    # n the longest reduction (d_ff) applies, not "a few roundings" (3.0e-6 was seen at |h| 0.35
    # under OpenBLAS against the old 16·eps bound). A real padding leak is O(|h|).
    assert_close(f"{case}: real positions, padding {case.pad_a} vs {case.pad_b} (junk ids)",
                 hb, ha, TINY.t5.d_ff * EPS32 * (np.abs(ha) + 1))


PAD_EXAMPLES = [
    PadCase(5, 59, 123, seed=0),  # 64 vs 128 tokens: the LiteRT export ran T5 on 128
    PadCase(64, 0, 64, seed=1),  # a full 64-token prompt
    PadCase(1, 63, 0, batch=2, seed=2),  # EOS only
]


@given(pad_cases())
@example(PAD_EXAMPLES[0])
@example(PAD_EXAMPLES[2])
def test_padding_is_zero(prompt, case):
    check_padding_zero(prompt, case)


@given(pad_cases())
@example(PAD_EXAMPLES[0])
@example(PAD_EXAMPLES[1])
def test_real_positions_independent_of_padding(prompt, case):
    check_padding_invariance(prompt, case)


def test_padding_catches(prompt):
    assert_detects(check_padding_zero, mutants.t5_unzeroed(prompt), [(c,) for c in PAD_EXAMPLES])
    assert_detects(check_padding_invariance, mutants.t5_mask_ignored(prompt),
                   [(c,) for c in PAD_EXAMPLES])


# -- 64 prompt tokens, one seconds token --------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return Tokenizer.from_file(tiny_checkpoint / "t5" / "spiece.model")


def check_conditioning_shapes(encode, model, texts):
    ids, mask = encode(texts)
    cross, glob = model.condition(ids, mask, [11.0] * len(texts))
    d = model.config.cond_dim
    assert ids.shape == (len(texts), 64), f"prompt tokens {ids.shape}, expected ({len(texts)}, 64)"
    assert cross.shape == (len(texts), 65, d), f"cross-attention cond {cross.shape}, expected 64 + 1"
    assert glob.shape == (len(texts), d), f"global cond {glob.shape}"
    # the 65th token is the seconds embedding, the global cond is that same vector
    assert np.array_equal(np.array(cross[:, 64]), np.array(glob)), "global cond != seconds token"


TEXTS = [["128 BPM tech house drum loop"], ["a", "rain on a tin roof, distant thunder " * 8]]


@pytest.mark.parametrize("texts", TEXTS, ids=["one", "two"])
def test_conditioning_has_64_plus_1_tokens(tiny_model, tokenizer, texts):
    assert tiny_model.config.max_length == 64
    check_conditioning_shapes(lambda t: tokenizer.encode(t, tiny_model.config.max_length),
                              tiny_model, texts)


def test_conditioning_shapes_catch_128_tokens(tiny_model, tokenizer):
    assert_detects(check_conditioning_shapes, lambda t: tokenizer.encode(t, 128),
                   [(tiny_model, t) for t in TEXTS])
