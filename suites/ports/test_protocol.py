"""The adapter protocol's contract: broken adapters are named in one line (exit 2), missing
stages are "not covered" (never a pass), and the generic capture (a module map, no capture
code in the adapter) gives per-layer first divergence with local/inherited from replay.

Every adapter here lives in tmp_path, outside the tree, and runs in its own worker process.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.progress import without_progress

HERE = Path(__file__).parent

BROKEN = textwrap.dedent('''
    import os
    import time

    import numpy as np

    from harness.ports.protocol import NotCovered, Port


    class Base(Port):
        name = "broken"

        def load(self, checkpoint_dir):
            pass


    class LoadRaises(Base):
        def load(self, checkpoint_dir):
            raise FileNotFoundError("my converter wants t5/spiece.json")


    class Raises(Base):
        def encode_text(self, input_ids, attention_mask):
            raise RuntimeError("tokenizer exploded")


    class MissingCalled(Base):
        def condition(self, input_ids, attention_mask, seconds_total):
            return self.encode_text(input_ids, attention_mask)  # this adapter has none


    class DeclaredOnly(Base):
        def dit_forward(self, x, t, cross, global_):
            raise NotImplementedError


    class WrongShape(Base):
        def encode_text(self, input_ids, attention_mask):
            return np.zeros((*input_ids.shape, 7), np.float32)


    class WrongDtype(Base):
        def encode_text(self, input_ids, attention_mask):
            return np.zeros((*input_ids.shape, 64), np.float64)


    class NaNs(Base):
        def decode(self, latents):
            b, _, t = latents.shape
            return np.full((b, 2, t * 64), np.nan, np.float32)


    class Hangs(Base):
        def encode_text(self, input_ids, attention_mask):
            time.sleep(3600)


    class Crashes(Base):
        def encode_text(self, input_ids, attention_mask):
            os._exit(3)


    class WeightsNotADict(Base):
        def converted_weights(self):
            return [np.zeros(3, np.float32)]


    class NotAnAdapter:
        pass


    class OnlyLoad(Base):
        pass


    class Partial:  # duck-typed: no Port base class
        name = "partial"

        def load(self, checkpoint_dir):
            from harness.ports.bundled import BundledPort

            self.bundled = BundledPort()
            self.bundled.load(checkpoint_dir)

        def encode_text(self, input_ids, attention_mask):
            return self.bundled.encode_text(input_ids, attention_mask)

        def sample(self, noise, step_noise, cond, steps, sampler, cfg_scale):
            if sampler != "euler":
                raise NotCovered(f"no {sampler} sampler")
            return self.bundled.sample(noise, step_noise, cond, steps, sampler, cfg_scale)


    class LateNaN(Partial):
        def decode(self, latents):
            b, _, t = latents.shape
            return np.full((b, 2, t * 64), np.nan, np.float32)
''')


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("adapters") / "broken.py"
    path.write_text(BROKEN)
    return path


def port_check(capsys, *args):
    code = main(["port", "check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("attr, stages, stage, needle", [
    ("LoadRaises", "text_encoder", "load", "FileNotFoundError: my converter wants"),
    ("Raises", "text_encoder", "encode_text", "RuntimeError: tokenizer exploded"),
    ("MissingCalled", "conditioner", "condition", "AttributeError"),
    ("DeclaredOnly", "dit", "dit_forward", "declared but not implemented"),
    ("WrongShape", "text_encoder", "encode_text", "float32[3, 64, 7], expected float32[3, 64, 64]"),
    ("WrongDtype", "text_encoder", "encode_text", "float64[3, 64, 64], expected float32"),
    ("NaNs", "decode", "decode", "NaN"),
    ("Hangs", "text_encoder", "encode_text", "no answer within 2 s (hung; killed)"),
    ("Crashes", "text_encoder", "encode_text", "process died"),
    ("WeightsNotADict", "converted_weights", "converted_weights",
     "TypeError: converted_weights() returned list, not a dict"),
    ("NotAnAdapter", "text_encoder", "import", "has no load(checkpoint_dir) method"),
    ("NoSuchAttr", "text_encoder", "import", "has no attribute 'NoSuchAttr'"),
])
def test_broken_adapter_is_one_line_exit_2(broken, capsys, attr, stages, stage, needle):
    spec = f"{broken}:{attr}"
    code, out, err = port_check(capsys, spec, "--stages", stages, "--timeout", 2)
    lines = without_progress(err)
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"adapter {spec}: stage {stage}: " in lines[0] and needle in lines[0], lines[0]


def test_broken_adapter_json_and_bad_spec(broken, capsys, tmp_path):
    code, out, err = port_check(capsys, f"{broken}:Raises", "--stages", "text_encoder", "--json")
    data = json.loads(out)
    assert code == 2 and data["passed"] is False and "tokenizer exploded" in data["error"]
    for spec, needle in ((f"{tmp_path}/nowhere.py:X", "no such file"),
                         ("no.such.module:X", "cannot import no.such.module"),
                         ("no-colon", "module:attr")):
        code, _, err = port_check(capsys, spec, "--stages", "text_encoder")
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_broken_late_keeps_the_stages_before(broken, capsys, tmp_path):
    """A port that breaks in its last stage still reports the stages it passed (exit 2)."""
    spec = f"{broken}:LateNaN"
    code, out, err = port_check(capsys, spec, "--stages", "text_encoder,decode", "--json",
                                "--report", tmp_path)
    data = json.loads(out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "stage decode: audio holds NaN/Inf" in data["error"]
    assert [(s["name"], s["verdict"]) for s in data["stages"]] == [("text_encoder", "pass")]
    md = next(tmp_path.glob("port-*.md")).read_text()
    assert "| text_encoder | pass |" in md and "**broken adapter**" in md


def test_missing_stages_are_not_covered_never_passed(broken, capsys):
    code, out, _ = port_check(capsys, f"{broken}:Partial", "--json", "--stages",
                              "text_encoder,conditioner,sampler,decode")
    data = json.loads(out)
    verdicts = {s["name"]: (s["verdict"], s["detail"]) for s in data["stages"]}
    assert code == 0 and data["passed"], out
    assert verdicts["text_encoder"][0] == "pass"
    assert verdicts["conditioner"] == ("not covered", "the adapter defines no condition()")
    # an euler-only sampler is checked on the euler golden of the same weights
    assert verdicts["sampler"][0] == "pass"
    assert "on golden tiny-torch-euler (pingpong: no pingpong sampler)" in verdicts["sampler"][1]
    assert verdicts["decode"][0] == "not covered"
    assert set(data["stages"][0]) >= {"name", "verdict", "detail", "first_divergence", "snr_db"}

    code, out, _ = port_check(capsys, f"{broken}:OnlyLoad", "--stages", "text_encoder,decode")
    assert code == 1 and "no stage covered" in out, out


# -- generic capture: a module map, no capture code -------------------------------------------

MUTATED = textwrap.dedent('''
    from harness.mutants import get
    from example_adapter import MyPort


    def with_bug(mutant):
        class Buggy(MyPort):
            name = f"my-mlx-port + {mutant}"

            def load(self, checkpoint_dir):
                super().load(checkpoint_dir)
                self.bug = get(mutant).apply(self.model, None)
                self.bug.__enter__()
        return Buggy


    ConvTLayout = with_bug("convt-weight-layout")
    RopeInterleaved = with_bug("rope-interleaved")
''')


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("example")
    shutil.copy(HERE / "example_adapter.py", d / "example_adapter.py")
    (d / "mutated.py").write_text(MUTATED)
    return d


@pytest.mark.parametrize("attr, stage, expected", [
    # the finest module the map names around each bug: the conv-transpose itself; for RoPE
    # (a function inside self_attn, no module of its own) the attention that applies it
    ("ConvTLayout", "decode", "pretransform.model.decoder.layers.1.layers.1"),
    ("RopeInterleaved", "dit", "model.model.transformer.layers.0.self_attn"),
])
def test_module_map_localizes(example_dir, capsys, attr, stage, expected):
    code, out, _ = port_check(capsys, f"{example_dir}/mutated.py:{attr}", "--stages", stage,
                              "--json")
    data = json.loads(out)
    s = data["stages"][0]
    assert code == 1 and s["verdict"] == "fail", out
    assert s["first_divergence"] == expected and s["where"] == "local", s["detail"]
    captured = [t["name"] for t in s["tensors"]]
    assert len(captured) > 3 and captured[0] != expected  # upstream layers captured and passed


def test_torch_forward_hooks_capture_and_replay():
    torch = pytest.importorskip("torch", reason="missing: torch (the `ports` extra installs it)")
    from harness.ports.capture import capture_modules
    from harness.ports.protocol import ModuleMap

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 1), torch.nn.ReLU(), torch.nn.Conv1d(3, 2, 1))
    x = torch.randn(1, 2, 5)
    mm = ModuleMap("torch", {"net": net}, {"net.0": ("a", "channels_last"), "net.2": "b"})
    with capture_modules(mm, ["a", "b"]) as got:
        y = net(x)
    assert got["a"].shape == (1, 5, 3)  # the layout note applied
    np.testing.assert_array_equal(got["b"], y.detach().numpy())
    zeros = {"a": np.zeros((1, 5, 3), np.float32)}
    with capture_modules(mm, ["a", "b"], zeros) as replayed:
        net(x)
    bias = net[2].bias.detach().numpy()[None, :, None]
    np.testing.assert_allclose(replayed["b"], np.broadcast_to(bias, (1, 2, 5)), rtol=1e-6)


TORCH_PORT = textwrap.dedent('''
    from pathlib import Path

    from harness.ports.bundled import BundledPort


    class TorchPort(BundledPort):
        framework = "torch"

        def encode_text(self, input_ids, attention_mask):
            if "libopenblas" in Path("/proc/self/maps").read_text():
                raise RuntimeError("OpenBLAS is loaded in a torch port's process")
            return super().encode_text(input_ids, attention_mask)
''')


def test_torch_port_runs_without_the_openblas_preload(tmp_path, capsys, monkeypatch):
    """The MLX preload would stand in for torch's sgemm: a torch adapter's process restarts
    without it (harness.reference.clean_env), whatever the harness itself runs with."""
    from harness.blas import runtime_env

    for key, value in runtime_env().items():  # {} where this process has it already
        monkeypatch.setenv(key, value)
    if "openblas" not in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("missing: OpenBLAS (libopenblas0-pthread), nothing is preloaded here")
    (tmp_path / "torch_port.py").write_text(TORCH_PORT)
    code, out, err = port_check(capsys, f"{tmp_path}/torch_port.py:TorchPort", "--stages",
                                "text_encoder")
    assert code == 0, out + err
