#!/usr/bin/env bash
# Runs every GPU check on a GPU machine, from the repository root, with the folder made by
# tests/gpu/package.sh present (tests/gpu/package/). Ends with a summary table, printed and
# written to $OUT/device_checks_summary.txt ($OUT when set, else the package folder), next to the
# full logs. Exit status 0 only when every check passed.
#
# Each GoogleTest suite of bin/gpu_tests runs in its own process under a time limit, so a check
# that aborts (a failed CUDA call is fatal by design) or hangs costs only its own suite. A suite
# that skips for want of a device counts as failed: here a GPU is expected. Benchmarks in bin/
# named *_bench report lines "MFU ...", "prefill tokens/s ..." and "train step ..." that the
# table repeats.
#
# Usage: tests/gpu/run_device_checks.sh [package folder]
# Env: OUT (where the summary goes), CUDA_HOME (/usr/local/cuda), STEERLM_SUITE_TIMEOUT_S (120).
set -uo pipefail
package=${1:-tests/gpu/package}
out_dir=${OUT:-$package}
suite_timeout=${STEERLM_SUITE_TIMEOUT_S:-120}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
start_s=$(date +%s)

if [ ! -x "$package/bin/gpu_tests" ]; then
  echo "run_device_checks: $package/bin/gpu_tests is missing; run tests/gpu/package.sh on a" \
    "development machine and copy $package here" >&2
  exit 1
fi
package=$(cd "$package" && pwd)
mkdir -p "$out_dir/device_check_logs"
out_dir=$(cd "$out_dir" && pwd)
logs="$out_dir/device_check_logs"
summary="$out_dir/device_checks_summary.txt"

# Library path: the package first, then the machine's CUDA toolkit (runtime, cuBLAS, NCCL).
library_path="$package/lib"
for dir in "$cuda_home/lib64" "$cuda_home/lib" "$cuda_home/targets/x86_64-linux/lib"; do
  [ -d "$dir" ] && library_path="$library_path:$dir"
done
export LD_LIBRARY_PATH="$library_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}

# How to start the binaries: directly, or through the packaged loader and C library when this
# machine's glibc is older than the build machine's.
runner=()
if ! "$package/bin/gpu_tests" --gtest_list_tests >"$logs/list.txt" 2>"$logs/start.txt"; then
  loader=$(ls "$package"/lib/glibc/ld-linux* 2>/dev/null | head -1)
  if [ -n "$loader" ] && "$loader" --library-path "$package/lib/glibc:$library_path" \
    "$package/bin/gpu_tests" --gtest_list_tests >"$logs/list.txt" 2>>"$logs/start.txt"; then
    runner=("$loader" --library-path "$package/lib/glibc:$library_path")
    echo "run_device_checks: starting the binaries with the packaged glibc ($loader)"
  else
    echo "run_device_checks: bin/gpu_tests does not start on this machine:" >&2
    cat "$logs/start.txt" >&2
    echo "--- ldd with LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2
    ldd "$package/bin/gpu_tests" | grep -E "not found|version" >&2
    echo "run_device_checks: the CUDA 13 runtime, cuBLAS 13 and NCCL 2 must be under" \
      "$cuda_home (set CUDA_HOME) or on LD_LIBRARY_PATH" >&2
    exit 1
  fi
fi

# GPU facts for the record.
{
  echo "steerlm device checks, $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  grep -E "^commit|^built" "$package/MANIFEST" 2>/dev/null
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader |
    sed 's/^/gpu: /'
} >"$logs/header.txt"

# Suites from the listing: lines without leading spaces name a suite ("Suite." or "Prefix/Suite.").
mapfile -t suites < <(grep -E '^[^ #]' "$logs/list.txt" | sed 's/ .*//; s/\.$//')

results=()
failed=0
for suite in "${suites[@]}"; do
  log="$logs/$(echo "$suite" | tr '/' '_').log"
  timeout "$suite_timeout" "${runner[@]}" "$package/bin/gpu_tests" --gtest_filter="$suite.*" \
    --gtest_color=no >"$log" 2>&1
  status=$?
  passed=$(grep -c '^\[       OK \]' "$log")
  failures=$(grep -c '^\[  FAILED  \] .*(' "$log")
  skipped=$(grep -c '^\[  SKIPPED \] .*(' "$log")
  # Skips for want of a device fail here; others (a test for machines without one) are fine.
  no_device=$(grep -c 'no CUDA device' "$log")
  if [ "$status" = 124 ]; then
    verdict="FAIL (timed out after ${suite_timeout}s)"
  elif [ "$status" != 0 ] || [ "$failures" != 0 ]; then
    verdict="FAIL (exit $status, $failures failed)"
  elif [ "$no_device" != 0 ]; then
    verdict="FAIL ($no_device skipped: no CUDA device visible)"
  else
    verdict="pass"
  fi
  [ "$verdict" = pass ] || failed=$((failed + 1))
  results+=("$(printf '%-60s %-6s %-6s %s' "$suite" "$passed" "$skipped" "$verdict")")
done

# Benchmarks, when the package has any: each *_bench once, llama_step_bench also with the fused
# attention.
bench_runs=()
for bench in "$package"/bin/*_bench; do
  [ -x "$bench" ] || continue
  bench_runs+=("$(basename "$bench")")
  [ "$(basename "$bench")" = llama_step_bench ] && bench_runs+=("llama_step_bench --flash")
done
bench_lines=()
for run in "${bench_runs[@]}"; do
  read -r name args <<<"$run"
  log="$logs/${name}${args:+_${args#--}}.log"
  # shellcheck disable=SC2086  # args are words
  timeout 180 "${runner[@]}" "$package/bin/$name" $args >"$log" 2>&1
  status=$?
  while IFS= read -r line; do bench_lines+=("$run: $line"); done < <(
    grep -E '^(MFU|prefill tokens/s|train step)' "$log")
  if [ "$status" != 0 ]; then
    bench_lines+=("$run: FAIL (exit $status, see $log)")
    failed=$((failed + 1))
  fi
done
if [ "${#bench_runs[@]}" = 0 ]; then
  bench_lines=("MFU: not measured (no *_bench binary in the package)"
    "prefill tokens/s: not measured (same reason)")
fi

# The table.
{
  cat "$logs/header.txt"
  echo
  printf '%-60s %-6s %-6s %s\n' "check (test suite)" "passed" "skip" "result"
  printf '%s\n' "${results[@]}"
  echo
  printf '%s\n' "${bench_lines[@]}"
  echo
  echo "suites: ${#suites[@]}, failed: $failed, wall: $(($(date +%s) - start_s)) s; logs: $logs"
} | tee "$summary"
echo "run_device_checks: summary written to $summary"
[ "$failed" = 0 ] && [ "${#suites[@]}" -gt 0 ]
