#!/usr/bin/env bash
# Multi-rank smoke test: 4 ranks under mpirun each write their own rank-tagged glog file under
# <output_dir>/logs, rank 0's carries the provenance and the resolved config is written.
# Usage: log_smoke_test.sh BINARY_DIR
set -euo pipefail
binary_dir=$1
output=$(mktemp -d)
trap 'rm -rf "$output" "$output.stdout"' EXIT

# A one-step sft on a small slice of the embedded dataset: the whole stage start-up on 4 ranks.
mpirun --oversubscribe --allow-run-as-root -np 4 -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 \
  "$binary_dir/bin/steerlm" sft --config configs/stages/sft_tiny.pbtxt --set train.steps=1 \
  --set "data.train=embedded:default?n=64" --set train.global_batch_size=4 \
  --set output_dir="$output" >"$output.stdout" 2>&1 || {
  echo "log_smoke_test: steerlm sft on 4 ranks failed"; cat "$output.stdout"; exit 1; }

fail() { echo "log_smoke_test: $*"; cat "$output.stdout"; exit 1; }
for rank in 0 1 2 3; do
  log="$output/logs/steerlm.rank$rank.log"
  [ -s "$log" ] || fail "missing or empty $log"
  grep -q " r$rank " "$log" || fail "$log lines are not tagged with rank $rank"
  grep -q "steerlm sft on 4 rank(s), rank $rank" "$log" || fail "$log lacks the start line"
done
grep -q "provenance: steerlm" "$output/logs/steerlm.rank0.log" || fail "no provenance in rank 0"
grep -q "ranks: 4 on $(hostname) (ranks 0-3)" "$output/logs/steerlm.rank0.log" ||
  fail "rank 0 does not list the hosts of all ranks"
grep -q "dim: 128" "$output/config.pbtxt" || fail "resolved config not written"
[ -f "$output/DONE" ] || fail "no DONE marker"
if grep -q "provenance" "$output/logs/steerlm.rank1.log"; then fail "rank 1 logged provenance"; fi
echo "log_smoke_test: 4 rank-tagged log files, provenance and config.pbtxt present"
