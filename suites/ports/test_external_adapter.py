"""The adapter path is as strong as the internal one: the bundled model wrapped as an EXTERNAL
adapter (a file in tmp_path, named as `module:attr` or `path/file.py:attr`), with a known bug of
the mutation catalogue injected by the catalogue's own patching, is caught by `port check` and
localized to the very module the golden check of `mutants run` names for that mutant.

The default run checks the stages up to the one the bug lives in (the earlier ones must pass);
the nightly run checks every stage and that the port's own audio is heard as broken too.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.cli import main

ADAPTER = textwrap.dedent('''
    """The bundled model as a third party would wrap it, with one known porting bug."""
    from harness.mutants import get
    from harness.ports.bundled import BundledPort


    class MutantPort(BundledPort):
        mutant = None

        def load(self, checkpoint_dir):
            super().load(checkpoint_dir)
            self.bug = get(self.mutant).apply(self.model, self.ckpt)
            self.bug.__enter__()  # for the adapter's whole life


    class ConvTLayout(MutantPort):
        name, mutant = "bundled + convt layout", "convt-weight-layout"


    class T5PaddingNotZeroed(MutantPort):
        name, mutant = "bundled + t5 padding", "t5-padding-not-zeroed"


    class RopeInterleaved(MutantPort):
        name, mutant = "bundled + interleaved rope", "rope-interleaved"
''')

# (adapter class, mutant, the stage it lives in, the stages checked by default)
CASES = [
    ("ConvTLayout", "convt-weight-layout", "decode", "converted_weights,decode"),
    ("T5PaddingNotZeroed", "t5-padding-not-zeroed", "conditioner",
     "converted_weights,text_encoder,conditioner"),
    ("RopeInterleaved", "rope-interleaved", "dit", "converted_weights,conditioner,dit"),
]


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("third_party")
    (d / "buggy_port.py").write_text(ADAPTER)
    return d


@pytest.fixture(scope="module")
def mutants_localize(tiny_checkpoint):
    """The module `mutants run`'s golden check names for a mutant (same code: compare_golden
    on the tiny-torch golden with the mutant applied to the in-process bundled model)."""
    from harness.compare.divergence import compare_golden, verify_weights
    from harness.golden.store import load_golden
    from harness.mutants import get
    from harness.mutants.run import CASE
    from harness.weights.load import load_model

    model, ckpt = load_model(tiny_checkpoint)
    golden = load_golden(CASE)
    verify_weights(golden, ckpt)

    def localize(name):
        with get(name).apply(model, ckpt):
            result = compare_golden(model, golden)
        first = result.first
        return first.name, "local" if not first.local_passed else "inherited"

    return localize


def run_check(capsys, spec, stages=None):
    args = ["port", "check", spec, "--json"] + (["--stages", stages] if stages else [])
    code = main(args)
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    return code, json.loads(out)


def assert_localized(data, stage, module, where):
    stages = {s["name"]: s for s in data["stages"]}
    s = stages[stage]
    assert s["verdict"] == "fail" and s["first_divergence"] == module and s["where"] == where, \
        s["detail"]
    # the stages before the bug's stage pass; converted weights fail only where the bug is a
    # weight (conv-transpose layout), naming a tensor of the same module
    for name, other in stages.items():
        if name == "converted_weights" and other["verdict"] == "fail":
            assert other["first_divergence"].rsplit(".", 1)[0] == module, other["detail"]
        elif list(stages).index(name) < list(stages).index(stage):
            assert other["verdict"] == "pass", other["detail"]


@pytest.mark.parametrize("attr, mutant, stage, stages", CASES, ids=[c[1] for c in CASES])
def test_injected_bug_localized_like_mutants_run(adapter_dir, capsys, monkeypatch,
                                                 mutants_localize, attr, mutant, stage, stages):
    from harness.mutants import get

    module, where = mutants_localize(mutant)
    assert module == get(mutant).expected_module
    # one spelling each way: module:attr (the adapter's dir is the working directory, as in a
    # port's own repository) and path/to/file.py:attr
    if attr == "RopeInterleaved":
        monkeypatch.chdir(adapter_dir)
        spec = f"buggy_port:{attr}"
    else:
        spec = f"{adapter_dir / 'buggy_port.py'}:{attr}"
    code, data = run_check(capsys, spec, stages)
    assert code == 1 and not data["passed"]
    assert_localized(data, stage, module, where)


@pytest.mark.nightly
@pytest.mark.parametrize("attr, mutant, stage, stages", CASES, ids=[c[1] for c in CASES])
def test_injected_bug_every_stage(adapter_dir, capsys, mutants_localize, attr, mutant, stage,
                                  stages):
    module, where = mutants_localize(mutant)
    code, data = run_check(capsys, f"{adapter_dir / 'buggy_port.py'}:{attr}")
    assert code == 1
    assert_localized(data, stage, module, where)
    audio = next(s for s in data["stages"] if s["name"] == "audio")
    assert audio["verdict"] == "fail", audio["detail"]  # every one of these is audible
