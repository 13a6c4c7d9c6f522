"""Malformed safetensors files: refused by the one reader as strictly as the format's own
rules, with one line naming the file and the fault; the gate never accepts one.

Every mutation starts from the real tiny checkpoint's model.safetensors, so only the named
fault is wrong. The hypothesis property cross-checks the reader against the `safetensors`
library itself: whatever the library refuses, the reader refuses.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suites.robustness.contract import bad_input, cli, rejected


def split(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def pack(header, data: bytes = b"", text: str | None = None) -> bytes:
    h = (text if text is not None else json.dumps(header)).encode("utf-8")
    return struct.pack("<Q", len(h)) + h + data


def _first(h) -> str:
    return next(k for k in h if k != "__metadata__")


def _by_offset(h) -> list[str]:
    return sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])


def _set(h, key, field, value):
    h[key][field] = value
    return h


def _shift_after_first(h, d, gap=4):
    """A hole of `gap` bytes after the first tensor (the rest moved up, the bytes inserted)."""
    order = _by_offset(h)
    end = h[order[0]]["data_offsets"][1]
    for k in order[1:]:
        a, b = h[k]["data_offsets"]
        h[k]["data_offsets"] = [a + gap, b + gap]
    return pack(h, d[:end] + b"\x00" * gap + d[end:])


def _overlap(h, d):
    order = _by_offset(h)
    a0, b0 = h[order[0]]["data_offsets"]
    same = next(k for k in order[1:] if h[k]["shape"] == h[order[0]]["shape"]
                and h[k]["dtype"] == h[order[0]]["dtype"])
    h[same]["data_offsets"] = [a0, b0]
    return pack(h, d)


def _duplicate_key(h, d):
    """A key written twice: json.loads would keep the second, hiding the first's bytes."""
    k = _first(h)
    text = json.dumps(h)
    dup = json.dumps({k: h[k]})[1:-1]
    return pack(None, d, text[:-1] + ", " + dup + "}")


def _duplicate_metadata(h, d):
    text = json.dumps(h)
    return pack(None, d, text[:-1] + ', "__metadata__": {"format": "pt"}}')


def _deep(h, d):
    return pack(None, d, '{"__metadata__": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _huge_tensor(h, d):
    """A header claiming a 1 TiB tensor in a small file."""
    k = _by_offset(h)[-1]
    a = h[k]["data_offsets"][0]
    h[k] = {"dtype": "U8", "shape": [1 << 40], "data_offsets": [a, a + (1 << 40)]}
    return pack(h, d)


def _shifted_start(h, d):
    for k in _by_offset(h):
        a, b = h[k]["data_offsets"]
        h[k]["data_offsets"] = [a + 8, b + 8]
    return pack(h, b"\x00" * 8 + d)


def _truncate_data(h, d):
    return pack(h, d[:-100])


# name -> (mutation(header, data) -> file bytes, words the one line must hold)
MUTATIONS = {
    "metadata-int-value": (lambda h, d: pack({**h, "__metadata__": {"format": 1}}, d),
                           "__metadata__ must map strings to strings"),
    "metadata-list": (lambda h, d: pack({**h, "__metadata__": ["pt"]}, d), "__metadata__"),
    "metadata-string": (lambda h, d: pack({**h, "__metadata__": "pt"}, d), "__metadata__"),
    "metadata-nested": (lambda h, d: pack({**h, "__metadata__": {"a": {"b": "c"}}}, d),
                        "__metadata__"),
    "metadata-null-value": (lambda h, d: pack({**h, "__metadata__": {"a": None}}, d),
                            "__metadata__"),
    "metadata-bool-value": (lambda h, d: pack({**h, "__metadata__": {"a": True}}, d),
                            "__metadata__"),
    "metadata-number": (lambda h, d: pack({**h, "__metadata__": 3}, d), "__metadata__"),
    "hole-between-tensors": (_shift_after_first, "unreferenced bytes"),
    "hole-of-one-byte": (lambda h, d: _shift_after_first(h, d, 1), "unreferenced bytes"),
    "hole-at-start": (_shifted_start, "unreferenced bytes"),
    "trailing-bytes": (lambda h, d: pack(h, d + b"\x00" * 16), "trailing bytes"),
    "trailing-one-byte": (lambda h, d: pack(h, d + b"\x01"), "trailing bytes"),
    "duplicate-key": (_duplicate_key, "twice"),
    "duplicate-metadata": (_duplicate_metadata, "twice"),
    "overlapping-tensors": (_overlap, "overlap"),
    "offsets-as-strings": (lambda h, d: pack(_set(h, _first(h), "data_offsets", [
        str(x) for x in h[_first(h)]["data_offsets"]]), d), "data_offsets must be"),
    "offsets-as-floats": (lambda h, d: pack(_set(h, _first(h), "data_offsets", [
        float(x) for x in h[_first(h)]["data_offsets"]]), d), "data_offsets must be"),
    "offsets-reversed": (lambda h, d: pack(_set(h, _first(h), "data_offsets",
                                                h[_first(h)]["data_offsets"][::-1]), d),
                         "data offsets"),
    "offsets-three": (lambda h, d: pack(_set(h, _first(h), "data_offsets",
                                             h[_first(h)]["data_offsets"] + [0]), d),
                      "data_offsets must be"),
    "offsets-negative": (lambda h, d: pack(_set(h, _first(h), "data_offsets", [-4, 0]), d),
                         "data_offsets must be"),
    "offsets-huge": (lambda h, d: pack(_set(h, _first(h), "data_offsets", [10**30, 10**30 + 4]),
                                       d), "data offsets"),
    "offsets-object": (lambda h, d: pack(_set(h, _first(h), "data_offsets", {"a": 0}), d),
                       "data_offsets must be"),
    "shape-as-strings": (lambda h, d: pack(_set(h, _first(h), "shape", [
        str(x) for x in h[_first(h)]["shape"]]), d), "shape must be"),
    "shape-negative": (lambda h, d: pack(_set(h, _first(h), "shape", [-1]), d), "shape must be"),
    "shape-float": (lambda h, d: pack(_set(h, _first(h), "shape", [
        x + 0.5 for x in h[_first(h)]["shape"]]), d), "shape must be"),
    "shape-bool": (lambda h, d: pack(_set(h, _first(h), "shape", [True]), d), "shape must be"),
    "shape-null": (lambda h, d: pack(_set(h, _first(h), "shape", None), d), "shape must be"),
    "shape-mismatch": (lambda h, d: pack(_set(h, _first(h), "shape", [1]), d), "do not hold"),
    "shape-nan": (lambda h, d: pack(None, d, json.dumps(_set(h, _first(h), "shape",
                                                             [float("nan")]))), "shape must be"),
    "dtype-int": (lambda h, d: pack(_set(h, _first(h), "dtype", 32), d), "dtype must be"),
    "dtype-unknown": (lambda h, d: pack(_set(h, _first(h), "dtype", "F8_E4M3"), d),
                      "unknown dtype"),
    "dtype-lowercase": (lambda h, d: pack(_set(h, _first(h), "dtype", "f32"), d),
                        "unknown dtype"),
    "entry-extra-field": (lambda h, d: pack(_set(h, _first(h), "extra", 1), d),
                          "exactly dtype, shape and data_offsets"),
    "entry-missing-offsets": (lambda h, d: pack({**h, _first(h): {
        "dtype": h[_first(h)]["dtype"], "shape": h[_first(h)]["shape"]}}, d),
                              "exactly dtype, shape and data_offsets"),
    "entry-list": (lambda h, d: pack({**h, _first(h): [1, 2]}, d), "header entry"),
    "entry-null": (lambda h, d: pack({**h, _first(h): None}, d), "header entry"),
    "entry-string": (lambda h, d: pack({**h, _first(h): "F32"}, d), "header entry"),
    "header-list": (lambda h, d: pack([1, 2], d), "not a JSON object"),
    "header-string": (lambda h, d: pack("x", d), "not a JSON object"),
    "header-number": (lambda h, d: pack(7, d), "not a JSON object"),
    "header-null": (lambda h, d: pack(None, d, "null"), "not a JSON object"),
    "header-truncated-json": (lambda h, d: pack(None, d, json.dumps(h)[:-7]), "not valid JSON"),
    "header-not-utf8": (lambda h, d: struct.pack("<Q", 4) + b'{"\xff"' + d, "not valid JSON"),
    "header-nested-deeply": (_deep, "nested too deeply"),
    "header-empty": (lambda h, d: struct.pack("<Q", 0) + d, "not valid JSON"),
    "header-length-past-end": (lambda h, d: struct.pack("<Q", 10**6) + b"{}", "runs past the end"),
    "header-length-max": (lambda h, d: struct.pack("<Q", 2**64 - 1) + b"{}", "runs past the end"),
    "header-over-100mb": (lambda h, d: struct.pack("<Q", 100_000_001) + b" " * 100_000_001,
                          "limit of 100000000"),
    "shorter-than-8-bytes": (lambda h, d: b"\x05\x00", "too short"),
    "empty-file": (lambda h, d: b"", "too short"),
    "pickle": (lambda h, d: b"\x80\x04\x95" + d[:64], "pickle"),
    "zip": (lambda h, d: b"PK\x03\x04" + d[:64], "zip archive"),
    "data-truncated": (_truncate_data, "truncated"),
    "tensor-of-1-tib": (_huge_tensor, "truncated"),
}


@pytest.fixture(scope="module")
def original(tiny_checkpoint) -> tuple[dict, bytes]:
    return split((tiny_checkpoint / "model.safetensors").read_bytes())


def _broken(tiny_copy, original, name):
    header, data = original
    ckpt = tiny_copy()
    make, needle = MUTATIONS[name]
    (ckpt / "model.safetensors").write_bytes(make(json.loads(json.dumps(header)), data))
    return ckpt, needle


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_inspect_refuses(name, tiny_copy, original):
    ckpt, needle = _broken(tiny_copy, original, name)
    bad_input(cli("inspect", ckpt), ckpt / "model.safetensors", needle)


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_gate_never_accepts(name, tiny_copy, original):
    ckpt, needle = _broken(tiny_copy, original, name)
    out = rejected(cli("gate", ckpt, "--expect", "update", "--no-parity", "--json"),
                   "model.safetensors", needle)
    structure = next(s for s in out["stages"] if s["name"] == "structure")
    assert structure["status"] == "fail"


def test_padded_header_is_accepted(tiny_copy, original):
    """The format allows trailing spaces in the header (alignment padding): accepted."""
    header, data = original
    ckpt = tiny_copy()
    text = json.dumps(header) + " " * 5
    (ckpt / "model.safetensors").write_bytes(pack(None, data, text))
    res = cli("inspect", ckpt)
    assert res.code == 0, res.err


# -- cross-check against the format's own library ----------------------------------------
@st.composite
def header_mutations(draw, header: dict) -> dict:
    """A few random edits of one entry or of the metadata, with values of every JSON type."""
    h = json.loads(json.dumps(header))
    keys = [k for k in h if k != "__metadata__"]
    value = st.recursive(st.none() | st.booleans() | st.integers(-2, 2**40) | st.floats()
                         | st.text(max_size=4), lambda c: st.lists(c, max_size=3)
                         | st.dictionaries(st.text(max_size=3), c, max_size=2), max_leaves=4)
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["__metadata__", *keys[:8]]))
        if target == "__metadata__":
            h["__metadata__"] = draw(value)
        else:
            field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]))
            h[target][field] = draw(value | st.integers(0, 4096).map(
                lambda n: [n, n + 4]) | st.sampled_from(["F32", "F16", "I64", "BF16"]))
    return h


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reader_is_at_least_as_strict_as_the_library(data, tmp_path_factory, original):
    from safetensors.numpy import load

    from harness.errors import BadInput
    from harness.weights.safetensors_io import read_header

    header, blob = original
    raw = pack(None, blob, json.dumps(data.draw(header_mutations(header)), allow_nan=True))
    path = tmp_path_factory.mktemp("hyp") / "model.safetensors"
    path.write_bytes(raw)
    try:
        load(raw)
        library_ok = True
    except Exception:  # noqa: BLE001 - any refusal of the library's
        library_ok = False
    try:
        read_header(path)
        ours_ok = True
    except BadInput as e:
        ours_ok = False
        assert "\n" not in str(e)
    assert not (ours_ok and not library_ok), "the library refuses a file our reader accepts"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 4000), flip=st.integers(0, 4000), byte=st.integers(0, 255))
def test_byte_damage_is_refused_or_read(cut, flip, byte, tmp_path_factory, original):
    """Any truncation or byte flip in the header region: BadInput or a valid read, never
    another exception (the reader is the only thing between bytes and the model)."""
    from harness.errors import BadInput
    from harness.weights.safetensors_io import read_header

    header, blob = original
    raw = bytearray(pack(header, blob))
    if flip < len(raw):
        raw[flip] = byte
    raw = bytes(raw[: len(raw) - cut]) if cut else bytes(raw)
    path = tmp_path_factory.mktemp("dmg") / "model.safetensors"
    path.write_bytes(raw)
    try:
        read_header(path)
    except BadInput as e:
        assert "\n" not in str(e)
