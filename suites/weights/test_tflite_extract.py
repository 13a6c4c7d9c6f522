"""`weights extract` / `weights diff` on real Arm-layout TFLite exports.

Default suite: the committed micro export (suites/weights/data/tflite-micro: conditioners fp32,
DiT int8 dynamic-range as Arm ships it, autoencoder fp32; each file < 0.5 MB) of the seeded
micro checkpoint, which is re-made here from its configs and seed and checked against the
sha256 the export recorded. Re-export (reference venv) if synth ever changes:

    VENV/bin/python -m harness.reference.export_for_extract --micro suites/weights/data/tflite-micro

`reference` tests export the tiny preset themselves (fp32, int8, int8 and fp16 weight-only) and
check the flatbuffer reader against the LiteRT interpreter:

    .venv-ref/bin/python -m pytest -m reference suites/weights/test_tflite_extract.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.errors import BadInput
from harness.compare.weightdiff import run_diff
from harness.weights.load import sha256_file
from harness.weights.safetensors_io import read_safetensors, write_safetensors
from harness.weights.synth import write_checkpoint
from harness.weights.tflite.extract import extract, load_config, read_extraction
from harness.weights.tflite.flatbuffer import read_graph
from harness.weights.tflite.names import Namer, scope_chains
from suites.cli_util import Result, assert_one_line_error

MICRO = Path(__file__).parent / "data" / "tflite-micro"
SAME_INT8 = "verdict: same weights (within int8 quantization)"
_MAIN = "import sys; from harness import cli; sys.exit(cli.main(sys.argv[1:]))"


def weights_cli(*args) -> Result:
    p = subprocess.run([sys.executable, "-c", _MAIN, "weights", *map(str, args)],
                       capture_output=True, text=True, timeout=600)
    return Result(p.returncode, p.stdout, p.stderr)


def diff_json(a, b) -> tuple[int, dict]:
    """In process (the CLI's own function and JSON), exit code as the CLI returns it."""
    d = run_diff(a, b)
    return (0 if d.same else 1), json.loads(json.dumps(d.as_dict()))


def perturb_checkpoint(src: Path, dst: Path, key: str, index, delta: float) -> Path:
    shutil.copytree(src, dst)
    tensors = read_safetensors(dst / "model.safetensors")
    tensors[key] = tensors[key].copy()
    tensors[key][index] += delta
    write_safetensors(dst / "model.safetensors", tensors)
    return dst


def channel_step(ex_dir_or_file, name: str, config=None) -> float:
    ex = extract(ex_dir_or_file, config)
    return float(np.max(ex.tensors[name].step))


# -- default suite: the committed micro export -------------------------------------------------

@pytest.fixture(scope="module")
def micro_ckpt(tmp_path_factory) -> Path:
    source = json.loads((MICRO / "source.json").read_text())
    ckpt = write_checkpoint(load_config(MICRO), source["seed"],
                            tmp_path_factory.mktemp("micro") / "ckpt")
    if sha256_file(ckpt / "model.safetensors") != source["checkpoint_sha256"]:
        pytest.fail("the micro TFLite fixture was exported from other weights than synth makes "
                    "now: re-export it (see this module's docstring)")
    return ckpt


def test_micro_extract_maps_every_tensor(micro_ckpt, tmp_path):
    out = tmp_path / "micro.safetensors"
    res = weights_cli("extract", MICRO, "--out", out, "--config", MICRO, "--json")
    assert res.code == 0, res.err
    s = json.loads(res.out)
    assert s["unmapped"] == [] and s["missing"] == []
    folded = 2 * len(s["folded"])  # each folded norm accounts for its gamma and beta
    assert s["mapped"] + folded == s["expected"] > 0
    assert set(s["files"]) == {"conditioners", "dit", "autoencoder"}
    assert s["storage"]["int8"] >= 14 and s["weight_norm_fused"] > 0
    assert s["transforms"] == {"atan2": 1, "log": s["transforms"]["log"],
                               "snake_beta": s["transforms"]["log"]}
    ex = read_extraction(out)  # the file holds what was reported
    assert len(ex.tensors) == s["mapped"] and ex.folded == s["folded"]


def test_micro_int8_export_is_the_same_weights(micro_ckpt):
    code, d = diff_json(MICRO, micro_ckpt)
    assert code == 0 and d["summary"] == "same weights (within int8 quantization)"
    assert d["unmapped"] == [] and d["missing"] == [] and d["only_in_a"] == []
    int8 = [t for t in d["tensors"] if "int8" in t["storage"]]
    assert int8 and all(0 < t["max_abs"] <= t["expected"] for t in int8)
    # the quantization is real: the error reaches most of the half step somewhere
    assert max(t["ratio"] for t in int8) > 0.9
    assert all(t["same"] for t in d["tensors"])
    text = weights_cli("diff", MICRO, micro_ckpt)
    assert text.code == 0 and text.out.rstrip().endswith(SAME_INT8)
    res = weights_cli("diff", micro_ckpt, MICRO, "--json")
    assert res.code == 0 and json.loads(res.out)["verdict"] == "same"


def test_micro_extracted_file_diffs_like_the_directory(micro_ckpt, tmp_path):
    out = tmp_path / "x.safetensors"
    assert weights_cli("extract", MICRO, "--out", out, "--reference", micro_ckpt).code == 0
    code, d = diff_json(micro_ckpt, out)  # either order, either kind
    assert code == 0 and d["verdict"] == "same"


def test_micro_other_seed_is_different(micro_ckpt, tmp_path):
    other = write_checkpoint(load_config(MICRO), 1, tmp_path / "seed1")
    code, d = diff_json(MICRO, other)
    assert code == 1 and d["summary"] == "different weights"
    assert len(d["different"]) > 0.9 * d["compared"]
    res = weights_cli("diff", MICRO, other)
    assert res.code == 1 and "verdict: different weights" in res.out


def test_micro_one_perturbed_checkpoint_tensor_is_named(micro_ckpt, tmp_path):
    key = "model.model.transformer.layers.1.cross_attn.to_kv.weight"
    step = channel_step(MICRO, key, load_config(MICRO))
    bad = perturb_checkpoint(micro_ckpt, tmp_path / "bad", key, (3, 5), 3 * step)
    code, d = diff_json(MICRO, bad)
    assert code == 1 and d["different"] == [key]
    res = weights_cli("diff", MICRO, bad)
    assert key in res.out and res.out.rstrip().endswith("verdict: different weights")


def test_micro_perturbed_vae_weight_norm_is_named_by_its_fused_name(micro_ckpt, tmp_path):
    module = "pretransform.model.decoder.layers.1.layers.1"  # the conv-transpose
    bad = perturb_checkpoint(micro_ckpt, tmp_path / "bad", f"{module}.weight_v", (0, 1, 2), 0.05)
    code, d = diff_json(MICRO, bad)
    assert code == 1 and d["different"] == [f"{module}.weight"]


def test_micro_perturbed_tflite_constant_is_named(micro_ckpt, tmp_path):
    key = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
    tdir = tmp_path / "tflite"
    shutil.copytree(MICRO, tdir)
    ex = extract(tdir, load_config(MICRO))
    name = ex.info[key]["tflite"]
    g = read_graph(tdir / "dit_model.tflite")
    t = next(t for t in g.tensors if t.name == name)
    offset = g.buffers[t.buffer][0] + 7  # one int8 element
    data = bytearray((tdir / "dit_model.tflite").read_bytes())
    del g
    data[offset] = (data[offset] + 40) % 256
    (tdir / "dit_model.tflite").write_bytes(bytes(data))
    code, d = diff_json(tdir, micro_ckpt)
    assert code == 1 and d["different"] == [key]


def test_micro_dit_alone_is_compared_alone(micro_ckpt, tmp_path):
    (tmp_path / "t").mkdir()
    shutil.copy(MICRO / "dit_model.tflite", tmp_path / "t")
    code, d = diff_json(tmp_path / "t", micro_ckpt)
    assert code == 0 and all(t["name"].startswith("model.model.") for t in d["tensors"])
    assert any(n.startswith("pretransform.") for n in d["only_in_b"])


def test_micro_without_its_config_is_refused_not_guessed():
    with pytest.raises(BadInput, match="fit none of the presets .* pass --config"):
        extract(MICRO)


# -- naming: Arm's own wrappers differ from ours above the official modules ----------------------

@pytest.mark.parametrize("name, official", [
    # Arm converts the DiTWrapper itself (no extra wrapper level); ModuleList never appears
    ("stable_audio_tools.models.diffusion.DiTWrapper/stable_audio_tools.models.dit."
     "DiffusionTransformer_model/stable_audio_tools.models.transformer.ContinuousTransformer_"
     "transformer/stable_audio_tools.models.transformer.TransformerBlock_11/stable_audio_tools."
     "models.transformer.Attention_cross_attn/torch.nn.modules.linear.Linear_to_kv;3",
     "model.model.transformer.layers.11.cross_attn.to_kv"),
    # Arm's AutoEncoderModule holds the pretransform as `autoencoder`
    ("__main__.AutoEncoderModule/stable_audio_tools.models.pretransforms.AutoencoderPretransform_"
     "autoencoder/stable_audio_tools.models.autoencoders.AudioAutoencoder_model/stable_audio_tools"
     ".models.autoencoders.OobleckDecoder_decoder/torch.nn.modules.container.Sequential_layers/"
     "stable_audio_tools.models.autoencoders.DecoderBlock_2/torch.nn.modules.container."
     "Sequential_layers/stable_audio_tools.models.autoencoders.ResidualUnit_3/torch.nn.modules."
     "container.Sequential_layers/torch.nn.modules.conv.Conv1d_1;",
     "pretransform.model.decoder.layers.2.layers.3.layers.1"),
])
def test_scope_names_resolve_to_official_modules(name, official):
    namer = Namer(load_config("full"))
    chains = scope_chains(name)
    assert namer.resolve(chains[-1])[0] == official


# -- bad input: exit 2, one line naming the file ------------------------------------------------

def test_garbage_tflite_is_bad_input(tmp_path, micro_ckpt):
    (tmp_path / "dit_model.tflite").write_bytes(b"\x00" * 64)
    assert_one_line_error(weights_cli("diff", tmp_path, micro_ckpt), "dit_model.tflite",
                          "not a TFLite model")
    assert_one_line_error(weights_cli("extract", tmp_path, "--out", tmp_path / "o.safetensors"),
                          "dit_model.tflite")


def test_truncated_tflite_is_bad_input(tmp_path, micro_ckpt):
    data = (MICRO / "dit_model.tflite").read_bytes()
    (tmp_path / "dit_model.tflite").write_bytes(data[: len(data) // 2])
    assert_one_line_error(weights_cli("diff", tmp_path, micro_ckpt), "dit_model.tflite")


def test_not_weights_is_bad_input(tmp_path, micro_ckpt):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(weights_cli("diff", tmp_path / "empty", micro_ckpt), "empty",
                          "no TFLite files")
    assert_one_line_error(weights_cli("diff", tmp_path / "nope", micro_ckpt), "nope")
    assert_one_line_error(weights_cli("extract", MICRO, "--out", tmp_path / "o.safetensors",
                                      "--config", tmp_path / "missing.json"), "missing.json")


# -- a user's real files: `pytest --tflite-dir ARM_DIR --weights CKPT` ----------------------------

def test_user_tflite_dir_maps_completely(request, tflite_dir, report_dir):
    """Every constant of the user's TFLite files is named and every expected tensor found; the
    answer itself (same or different) is written to the report, not asserted."""
    weights = request.config.getoption("--weights")
    if tflite_dir is None or weights is None:
        pytest.skip("missing: --tflite-dir DIR (Arm's .tflite files) and --weights CKPT")
    d = run_diff(tflite_dir, weights)
    (report_dir / "tflite-weights-diff.json").write_text(json.dumps(d.as_dict(), indent=2))
    assert d.unmapped == [] and d.missing == [], f"unmapped {d.unmapped[:3]}, missing {d.missing[:3]}"


# -- reference: tiny preset exported here, fp32 / int8 / weight-only -----------------------------

@pytest.fixture(scope="module")
def tiny_exports(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("litert_torch", reason="needs the reference venv (litert-torch, torch)")
    from harness.reference.build import load_reference
    from harness.reference.export_for_extract import export

    model, _ = load_reference(tiny_checkpoint)
    root = tmp_path_factory.mktemp("tiny-tflite")
    arm = export(model, root / "arm", {"conditioners": "fp32", "dit": "int8",
                                       "autoencoder": "fp32"})
    wo = export(model, root / "wo", {"dit": "int8-weight-only", "autoencoder": "fp16"})
    return {"arm": root / "arm", "wo": root / "wo", "files": list(arm.values()) + list(wo.values())}


@pytest.mark.reference
def test_reader_matches_the_litert_interpreter(tiny_exports):
    """Every constant the flatbuffer reader returns equals the interpreter's tensor, with the
    same quantization parameters."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from harness.weights.tflite.dequant import constant_leaves

    checked = 0
    for path in tiny_exports["files"]:
        g = read_graph(path)
        it = Interpreter(model_path=str(path), experimental_op_resolver_type=
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        details = {d["index"]: d for d in it.get_tensor_details()}
        for leaf in constant_leaves(g):
            for t in leaf.sources:
                d = details[t.index]
                assert d["name"] == t.name and tuple(d["shape"]) == t.shape
                np.testing.assert_array_equal(it.get_tensor(t.index), g.raw(t))
                q = d["quantization_parameters"]
                if t.scale is not None:
                    np.testing.assert_array_equal(q["scales"], t.scale)
                    np.testing.assert_array_equal(q["zero_points"], t.zero_point)
                    assert q["quantized_dimension"] == t.axis
                else:
                    assert q["scales"].size == 0
                checked += 1
    assert checked > 100


@pytest.mark.reference
def test_tiny_arm_split_is_the_same_weights(tiny_exports, tiny_checkpoint, report_dir):
    code, d = diff_json(tiny_exports["arm"], tiny_checkpoint)
    (report_dir / "tflite-diff-tiny-arm.json").write_text(json.dumps(d, indent=2))
    assert code == 0 and d["summary"] == "same weights (within int8 quantization)"
    assert d["unmapped"] == [] and d["missing"] == [] and d["only_in_a"] == []
    # all of the DiT, the decoder, the seconds conditioner and T5 were compared
    only_b = {n.split(".")[0] + "." + n.split(".")[2] for n in d["only_in_b"]}
    assert only_b == {"pretransform.encoder"}
    int8 = [t for t in d["tensors"] if t["storage"] == "int8"]
    assert len(int8) == 24 and all(0 < t["max_abs"] <= t["expected"] for t in int8)


@pytest.mark.reference
def test_tiny_weight_only_int8_and_fp16_are_the_same_weights(tiny_exports, tiny_checkpoint):
    code, d = diff_json(tiny_exports["wo"], tiny_checkpoint)
    assert code == 0 and d["summary"] == "same weights (within int8/fp16 quantization)"
    assert d["unmapped"] == [] and d["missing"] == []
    kinds = {t["storage"] for t in d["tensors"]}
    assert {"int8", "float16"} <= kinds


@pytest.mark.reference
def test_tiny_other_seed_and_perturbed_tensor(tiny_exports, tiny_checkpoint, tmp_path):
    other = write_checkpoint("tiny", 1, tmp_path / "seed1")
    for side in ("arm", "wo"):
        code, d = diff_json(tiny_exports[side], other)
        assert code == 1 and len(d["different"]) > 0.9 * d["compared"]
    key = "model.model.transformer.layers.1.ff.ff.2.weight"
    bad = perturb_checkpoint(tiny_checkpoint, tmp_path / "bad", key, (7, 9), 0.01)
    for side in ("arm", "wo"):
        code, d = diff_json(tiny_exports[side], bad)
        assert code == 1 and d["different"] == [key]
