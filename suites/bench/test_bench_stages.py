"""The shipped stage benchmarks (harness/bench/suite.py), run once each untimed by the default
suite (--benchmark-disable) as a smoke test of the benchmark code and of each stage's output."""

from harness.bench.suite import bench_stages, test_stage  # noqa: F401 - collected here
