"""The T5 tokenizer wrapper and the committed tiny spiece.model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import sentencepiece as spm

from harness.errors import BadInput
from harness.model.tokenizer import EOS_ID, PAD_ID, Tokenizer
from harness.weights.data import SPIECE_MODEL, train_spiece

PROMPT = "Warm lo-fi hip hop beat, 85 BPM"
# Pinned: goldens made with this spiece.model depend on these ids.
PROMPT_IDS = [776, 77, 88, 64, 76, 4, 326, 272, 4, 53, 3, 394, 301, 5]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_file(SPIECE_MODEL)


def test_model_has_t5_special_ids(tok):
    sp = tok.sp
    assert tok.vocab_size == 1000  # fits the tiny T5's 1024 embedding rows
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]


def test_short_prompt_pieces_eos_then_padding(tok):
    ids, mask = tok.encode([PROMPT])
    assert ids.shape == mask.shape == (1, 64)
    assert ids.dtype == mask.dtype == np.int32
    n = len(PROMPT_IDS)
    assert ids[0, :n].tolist() == PROMPT_IDS
    assert ids[0, n] == EOS_ID
    assert (ids[0, n + 1:] == PAD_ID).all()
    assert mask[0].tolist() == [1] * (n + 1) + [0] * (64 - n - 1)


def test_batch_rows_are_independent_and_padded_separately(tok):
    texts = [PROMPT, "", "dark ambient pad"]
    ids, mask = tok.encode(texts)
    for row, text in enumerate(texts):
        one_ids, one_mask = tok.encode([text])
        np.testing.assert_array_equal(ids[row], one_ids[0])
        np.testing.assert_array_equal(mask[row], one_mask[0])
    # empty prompt: just EOS
    assert ids[1, 0] == EOS_ID and mask[1].sum() == 1 and (ids[1, 1:] == PAD_ID).all()


@pytest.mark.parametrize("n_pieces, kept", [(62, 62), (63, 63), (64, 63), (200, 63)])
def test_truncation_keeps_eos_last(tok, n_pieces, kept):
    text = " ".join(["piano"] * n_pieces)
    assert len(tok.sp.encode(text)) == n_pieces  # "▁piano" is one piece
    ids, mask = tok.encode([text])
    assert ids[0, :kept].tolist() == tok.sp.encode(text)[:kept]
    assert ids[0, kept] == EOS_ID
    assert mask[0].sum() == kept + 1
    assert (ids[0, kept + 1:] == PAD_ID).all()


def test_other_max_length(tok):
    ids, mask = tok.encode([PROMPT], max_length=8)
    assert ids[0].tolist() == PROMPT_IDS[:7] + [EOS_ID]
    assert mask[0].tolist() == [1] * 8


def test_unknown_characters_map_to_unk(tok):
    ids, _ = tok.encode(["Piano!"])
    assert ids[0, :4].tolist() == [90, 877, 2, EOS_ID]


def test_deterministic_across_instances(tok):
    texts = [PROMPT, "Epic orchestral trailer with timpani, 120 BPM, D minor"]
    a = tok.encode(texts)
    b = Tokenizer.from_file(SPIECE_MODEL).encode(texts)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_single_string_is_rejected(tok):
    with pytest.raises(TypeError):
        tok.encode(PROMPT)


@pytest.mark.parametrize("content", [None, b"", b"hello world\n", bytes(range(256)) * 8])
def test_bad_file_is_bad_input_naming_the_file(tmp_path, content):
    path = tmp_path / "spiece.model"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput) as e:
        Tokenizer.from_file(path)
    assert str(path) in str(e.value)


def test_non_t5_special_ids_are_bad_input(tmp_path):
    buf = io.BytesIO()
    lines = [f"{w} music number {i}" for i, w in enumerate(["calm", "loud", "soft"] * 20)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf,
                                   vocab_size=30, num_threads=1, minloglevel=2)  # eos_id 2
    path = tmp_path / "spiece.model"
    path.write_bytes(buf.getvalue())
    with pytest.raises(BadInput, match="eos_id 2"):
        Tokenizer.from_file(path)


def test_committed_model_is_reproducible():
    assert train_spiece.train() == SPIECE_MODEL.read_bytes(), (
        "harness/weights/data/spiece.model differs from a fresh run of train_spiece.py")
