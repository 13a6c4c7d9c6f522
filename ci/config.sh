# shellcheck shell=bash
# Settings shared by the CI scripts (sourced, not run).

# Peak RSS of the full-size suites, GB: README "Performance", full-size `sao-harness generate`
# (the 256-frame VAE decode dominates). The memory work lowers it: change it here only.
: "${SAO_CI_FULL_PEAK_RSS_GB:=8.5}"
# What the OS, pytest and the runner's agent hold beside it.
: "${SAO_CI_MEMORY_HEADROOM_GB:=1.5}"
# Runs of the benchmark noise measurement when a machine class is bootstrapped (each ~1 min
# for the tiny stages; README of golden/benchmarks: 10 for a committed threshold.json).
: "${SAO_CI_BENCH_NOISE_RUNS:=5}"
# Where reports, JUnit XML and bootstrap files go (uploaded as the artifact).
: "${SAO_CI_REPORTS:=reports}"
export SAO_CI_FULL_PEAK_RSS_GB SAO_CI_MEMORY_HEADROOM_GB SAO_CI_BENCH_NOISE_RUNS SAO_CI_REPORTS
