#!/usr/bin/env bash
# Benchmark backends on a preset with the CLI, twice, and compare the two result files.
#   bash examples/benchmark_solvers.sh [PRESET] [TIME_LIMIT] [OUT_DIR]
set -euo pipefail
PRESET="${1:-small}"
LIMIT="${2:-10}"
OUT="${3:-qpmopt-bench}"
mkdir -p "$OUT"
qpmopt bench --preset "$PRESET" --backends localsearch,anneal,highs --time-limit "$LIMIT" -o "$OUT/first.json" --force
qpmopt bench --preset "$PRESET" --backends localsearch,anneal,highs --time-limit "$LIMIT" --seed 1 -o "$OUT/second.json" --force
qpmopt bench show "$OUT/first.json"
qpmopt bench compare "$OUT/first.json" "$OUT/second.json"
