"""Build hook (everything else is in pyproject.toml): the wheel carries the tiny goldens and
the benchmark baselines as harness/data/golden/ (harness.settings.PACKAGED_GOLDEN), so an
install from the wheel verifies, compares and runs the mutants outside any checkout.

Only the tiny goldens ship (~46 MB, ~39 MB zipped): they are what the default, seeded tiny
checkpoint is checked against. The full-size ones (~31 MB more) mean something only beside a
multi-GB full-size checkpoint, so a checkout's golden/ is pointed at for them
(`SAO_GOLDEN_DIR` or `--golden-dir`).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

GOLDEN = Path(__file__).resolve().parent / "golden"
SHIPPED = ("tiny-*", "benchmarks")  # golden/ entries copied into the wheel


class BuildPyWithGoldens(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's golden/ itself
            return
        dirs = sorted(d for pattern in SHIPPED for d in GOLDEN.glob(pattern) if d.is_dir())
        if not (GOLDEN / "tiny-torch").is_dir():
            raise SystemExit(f"{GOLDEN}: no tiny goldens to package; build from a checkout")
        dst = Path(self.build_lib) / "harness" / "data" / "golden"
        shutil.rmtree(dst, ignore_errors=True)
        for d in dirs:
            shutil.copytree(d, dst / d.name)


setup(cmdclass={"build_py": BuildPyWithGoldens})
