#!/usr/bin/env bash
# A real Slurm on this machine (issue 8): starts munged, slurmctld and slurmd on localhost with
# tests/launch/slurm/slurm.conf.in in a temporary directory, submits tests/launch/pipelines/
# tiny.pbtxt with `steerlm pipeline submit` (one sbatch job per pipeline job, chained with
# afterok, srun --mpi=pmix), waits for the jobs and checks their outputs, then stops the daemons
# it started. Exits 77 (skipped) when Slurm cannot start here, saying why.
# Usage: slurm_test.sh BINARY_DIR
set -euo pipefail
binary_dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/steerlm_slurm.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
skip() { echo "slurm_test: SKIP: $*"; exit 77; }
fail() {
  echo "slurm_test: $*"
  for log in "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/out/*/slurm-*.out; do
    [ -e "$log" ] && { echo "== $log"; tail -20 "$log"; }
  done
  exit 1
}
for tool in munged slurmctld slurmd sbatch squeue sinfo scontrol; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (launch/install_deps.sh)"
done

# munged: a fresh key, its socket in the temporary directory.
mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
chmod 711 "$dir" "$dir/munge"
head -c 1024 /dev/urandom >"$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
munged -F --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed" >"$dir/munged.out" 2>&1 &
pids+=($!)

# slurmctld and slurmd on ports of our own, so another cluster on this host does not answer.
port=$((20000 + RANDOM % 20000))
sed -e "s|@DIR@|$dir|g" -e "s|@CTLD_PORT@|$port|" -e "s|@D_PORT@|$((port + 1))|" \
  -e "s|@CPUS@|$(nproc)|" "$here/slurm/slurm.conf.in" >"$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"
for _ in $(seq 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$dir/munge/munge.sock" ] || skip "munged did not start: $(cat "$dir/munged.out")"
slurmctld -D -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = "idle" ] && break
  sleep 0.2
done
[ "$(sinfo -h -o %T 2>/dev/null)" = "idle" ] ||
  skip "Slurm did not come up: $(tail -3 "$dir/slurmctld.log" "$dir/slurmd.log" 2>&1 | tr '\n' ' ')"
echo "slurm_test: munged, slurmctld and slurmd up (port $port)"

# Submit the tiny pipeline: 4 jobs, ranks oversubscribed on this node's cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$binary_dir/bin/steerlm" pipeline submit tests/launch/pipelines/tiny.pbtxt \
  --set output_dir="$dir/out" --set slurm.overcommit=true >"$dir/submit.out" 2>&1 ||
  { cat "$dir/submit.out"; fail "pipeline submit failed"; }
cat "$dir/submit.out"
[ "$(wc -l <"$dir/submit.out")" -eq 4 ] || fail "expected 4 submitted jobs"
grep -qE '^annotate [0-9]+ afterok:[0-9]+:[0-9]+ ' "$dir/submit.out" ||
  fail "annotate was not submitted with afterok on attr and data"

# Wait for the queue to drain.
for _ in $(seq 900); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  squeue -h -o %r | grep -q DependencyNeverSatisfied && fail "a job failed: $(squeue -o '%j %r')"
  sleep 0.2
done
[ -z "$(squeue -h)" ] || fail "jobs still queued after 180 s: $(squeue)"

# Every job finished with its outputs.
for job in attr sft data annotate; do
  [ -e "$dir/out/$job/DONE" ] || fail "$job has no DONE"
done
for job in attr sft; do
  [ "$(grep -vc '"split"' "$dir/out/$job/metrics.jsonl")" -ge 3 ] || fail "$job: few metrics"
done
[ "$(wc -l <"$dir/out/annotate/annotated.jsonl")" -eq 12 ] || fail "annotate: not 12 records"
[ -e "$dir/out/annotate/logs/steerlm.rank1.log" ] || fail "annotate did not run on 2 ranks"
"$binary_dir/bin/steerlm" pipeline status tests/launch/pipelines/tiny.pbtxt \
  --set output_dir="$dir/out" >"$dir/status.out"
[ "$(grep -cE '^(attr|sft|data|annotate) +done' "$dir/status.out")" -eq 4 ] ||
  { cat "$dir/status.out"; fail "status does not show 4 done jobs"; }
cat "$dir/status.out"
/usr/bin/python3 - "$dir/out/pipeline_state.json" <<'PY'
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert all(j["state"] == "done" for j in jobs.values()), jobs
assert jobs["annotate"]["start_s"] >= max(jobs["attr"]["end_s"], jobs["data"]["end_s"]), jobs
PY
echo "slurm_test: 4 Slurm jobs chained with afterok ran the pipeline"
