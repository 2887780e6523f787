#!/usr/bin/env bash
# The benchmark behind the README's performance table: every backend on every preset and on
# the two shared reference instances, 60 s each, one process per run.
#   bash benchmarks/run_suite.sh            (about 30 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
shared=../shared/instances
qpmopt bench --preset tiny,small,medium,cub,imagenet --backends localsearch,anneal,highs,cpsat,auto \
  --time-limit 60 -o "$out/presets.json" --force
qpmopt bench --instance "$shared/medium-1.npz" -k 5 -n 30 --backends localsearch,anneal,highs,cpsat,auto \
  --time-limit 60 -o "$out/shared-medium-1.json" --force
qpmopt bench --instance "$shared/cub-1.npz" -k 5 -n 50 --backends localsearch,anneal,highs,cpsat,auto \
  --time-limit 60 -o "$out/shared-cub-1.json" --force
python benchmarks/make_table.py
