#!/usr/bin/env bash
# `steerlm pipeline run|status|submit` end to end on tests/launch/pipelines/tiny.pbtxt (issue 8):
#  - spec errors: each one line on stderr naming FILE:LINE, the job and the field; exit 1;
#  - a run on 2 ranks: attr and sft, independent, run at the same time on one rank each (their
#    state-file timings overlap); every job has DONE and per-rank logs; the summary is printed;
#  - a re-run does no work: the state file is unchanged and the log says each job was skipped;
#  - a job failing on 2 ranks stops its dependants only, and the run exits 1 naming it;
#  - the run killed (SIGKILL of its ranks) during sft, then re-run: sft resumes from its
#    checkpoint and its final weights and last loss equal the uninterrupted run's;
#  - `pipeline submit --dry-run` writes sbatch scripts for Slurm.
# Usage: pipeline_cli_test.sh BINARY_DIR
set -euo pipefail
binary_dir=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
steerlm="$binary_dir/bin/steerlm"
tiny=tests/launch/pipelines/tiny.pbtxt
fail() { echo "pipeline_cli_test: $*"; exit 1; }
mpi() {  # mpi RANKS ARGS...
  local ranks=$1
  shift
  mpirun --oversubscribe --allow-run-as-root -np "$ranks" -x OMP_NUM_THREADS=1 \
    -x OPENBLAS_NUM_THREADS=1 "$steerlm" "$@"
}

# Spec errors: exit 1 and exactly this line on stderr.
expect_error() {  # expect_error NAME 'EXPECTED LINE' (the spec is on stdin)
  local name=$1 expected=$2 status=0
  cat >"$root/$name.pbtxt"
  "$steerlm" pipeline run "$root/$name.pbtxt" --set output_dir="$root/$name" \
    >"$root/$name.out" 2>"$root/$name.err" || status=$?
  [ "$status" -eq 1 ] || { cat "$root/$name.err"; fail "$name: exit $status, expected 1"; }
  local got
  got=$(cat "$root/$name.err")
  [ "$got" = "steerlm: error: ${expected//ROOT/$root}" ] ||
    fail "$name: got '$got', expected 'steerlm: error: ${expected//ROOT/$root}'"
}
expect_error cycle "ROOT/cycle.pbtxt:1: job 'a': depends_on: dependency cycle a -> b -> a" <<'EOF2'
job { name: "a" command: "data-synth" depends_on: "b" args: ["--output", "${a}/x"] }
job { name: "b" command: "data-synth"
      depends_on: "a" args: ["--output", "${b}/x"] }
EOF2
expect_error unknown "ROOT/unknown.pbtxt:2: job 'b': depends_on: unknown job 'nope'" <<'EOF2'
job { name: "a" command: "data-synth" args: ["--output", "${a}/x"] }
job { name: "b" command: "data-synth" depends_on: "nope" args: ["--output", "${b}/x"] }
EOF2
expect_error duplicate \
  "ROOT/duplicate.pbtxt:2: job 'a': name: duplicate job name (first defined at ROOT/duplicate.pbtxt:1: job 1)" <<'EOF2'
job { name: "a" command: "data-synth" args: ["--output", "${a}/x"] }
job { name: "a" command: "data-synth" args: ["--output", "${a}/y"] }
EOF2
expect_error ranks \
  "ROOT/ranks.pbtxt:2: job 'big': ranks: 4 ranks, but the allocation has 1; lower it or launch more ranks" <<'EOF2'
job { name: "big" command: "sft" config_file: "configs/stages/sft_tiny.pbtxt"
      ranks: 4 }
EOF2
expect_error command \
  "ROOT/command.pbtxt:1: job 'a': command: unknown command 'train' (one of train-attr, annotate, sft, eval-attr, eval-steer, bootstrap, generate, data-synth, tokenizer-train)" <<'EOF2'
job { name: "a" command: "train" }
EOF2
expect_error reference \
  "ROOT/reference.pbtxt:2: job 'b': args: \${a} is not a job it depends on; add \"a\" to depends_on" <<'EOF2'
job { name: "a" command: "data-synth" args: ["--output", "${a}/x"] }
job { name: "b" command: "data-synth" args: ["--output", "${a}/y"] }
EOF2
echo "pipeline_cli_test: spec errors name file:line, job and field"

# A run on 2 ranks.
out="$root/run"
start=$(date +%s)
mpi 2 pipeline run "$tiny" --set output_dir="$out" >"$root/run.out" 2>&1 ||
  { cat "$root/run.out"; fail "pipeline run failed"; }
echo "pipeline_cli_test: tiny pipeline ran in $(($(date +%s) - start)) s"
for job in attr sft data annotate; do
  for file in DONE logs/steerlm.rank0.log; do
    [ -e "$out/$job/$file" ] || fail "$job lacks $file"
  done
done
[ -e "$out/annotate/logs/steerlm.rank1.log" ] || fail "annotate lacks rank 1's log"
grep -q "summary of $out" "$root/run.out" || fail "no summary printed"
# The inline config replaces config_file's lists instead of appending to them.
[ "$(grep -c 'train: ' "$out/attr/job_config.pbtxt")" -eq 1 ] &&
  grep -q 'train: "embedded:default?n=64"' "$out/attr/job_config.pbtxt" ||
  fail "attr's data.train is not the inline list alone"
/usr/bin/python3 - "$out/pipeline_state.json" <<'PY'
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert all(j["state"] == "done" for j in jobs.values()), jobs
a, s = jobs["attr"], jobs["sft"]
assert {a["ranks"], s["ranks"]} == {"0", "1"}, (a["ranks"], s["ranks"])
assert a["start_s"] < s["end_s"] and s["start_s"] < a["end_s"], "attr and sft did not overlap"
assert jobs["annotate"]["start_s"] >= max(a["end_s"], jobs["data"]["end_s"])
print("pipeline_cli_test: attr and sft ran concurrently on ranks 0 and 1")
PY

# A re-run does no work.
cp "$out/pipeline_state.json" "$root/state.before"
mpi 2 pipeline run "$tiny" --set output_dir="$out" >"$root/rerun.out" 2>&1 ||
  { cat "$root/rerun.out"; fail "re-run failed"; }
cmp "$root/state.before" "$out/pipeline_state.json" || fail "re-run changed the state file"
[ "$(grep -c 'skipped: .*DONE exists' "$root/rerun.out")" -eq 4 ] || fail "re-run did not skip"
! grep -q "started on rank" "$root/rerun.out" || fail "re-run started a job"
"$steerlm" pipeline status "$tiny" --set output_dir="$out" >"$root/status.out"
[ "$(grep -cE '^(attr|sft|data|annotate) +done' "$root/status.out")" -eq 4 ] ||
  { cat "$root/status.out"; fail "status does not show 4 done jobs"; }
echo "pipeline_cli_test: re-run skipped every job; status shows them done"

# A failing job stops its dependants only.
cat >"$root/failing.pbtxt" <<'EOF2'
job { name: "bad" command: "eval-attr" ranks: 2
      args: ["--model", "/nonexistent/checkpoint", "--input", "/nonexistent.jsonl",
             "--output", "${bad}"] }
job { name: "after" command: "data-synth" depends_on: "bad" args: ["--output", "${after}/x"] }
job { name: "other" command: "data-synth" args: ["--output", "${other}/x", "--n", "3"] }
EOF2
status=0
mpi 2 pipeline run "$root/failing.pbtxt" --set output_dir="$root/failing" \
  >"$root/failing.out" 2>&1 || status=$?
[ "$status" -ne 0 ] || { cat "$root/failing.out"; fail "failing pipeline exited 0"; }
grep -q "steerlm: error: job 'bad': " "$root/failing.out" || fail "the failing job is not named"
grep -q "job after not run: it depends on 'bad'" "$root/failing.out" || fail "dependant not stopped"
/usr/bin/python3 - "$root/failing/pipeline_state.json" <<'PY'
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert jobs["bad"]["state"] == "failed" and jobs["bad"]["error"], jobs["bad"]
assert jobs["after"]["state"] == "pending" and jobs["other"]["state"] == "done", jobs
PY
echo "pipeline_cli_test: a failed job stops its dependants; the run exits 1 naming it"

# Killed during sft, then re-run: the same final outputs as the uninterrupted run.
killed="$root/killed"
mpi 2 pipeline run "$tiny" --set output_dir="$killed" >"$root/killed.out" 2>&1 &
launcher=$!
for _ in $(seq 600); do
  grep -qE '^step: ([4-9]|1[0-9])$' "$killed/sft/checkpoint/manifest.pbtxt" 2>/dev/null && break
  sleep 0.1
done
grep -qE '^step: ' "$killed/sft/checkpoint/manifest.pbtxt" || fail "sft never checkpointed"
[ ! -e "$killed/sft/DONE" ] || fail "sft finished before it could be killed; give it more steps"
for rank in $(pgrep -P "$launcher" || true) $(pgrep -P "$(pgrep -P "$launcher" | head -1)" || true); do
  kill -9 "$rank" 2>/dev/null || true
done
wait "$launcher" 2>/dev/null || true
grep -q '"state": "running"' "$killed/pipeline_state.json" || fail "no running job after the kill"
mpi 2 pipeline run "$tiny" --set output_dir="$killed" >"$root/resumed.out" 2>&1 ||
  { cat "$root/resumed.out"; fail "re-run after the kill failed"; }
grep -q "job sft was interrupted" "$root/resumed.out" || fail "re-run did not note the interruption"
grep -q "resum" "$killed/sft/logs/steerlm.rank0.log" || fail "sft did not resume from its checkpoint"
for weights in "$out"/sft/checkpoint/*.safetensors; do
  cmp "$weights" "$killed/sft/checkpoint/$(basename "$weights")" ||
    fail "resumed sft's $(basename "$weights") differs from the uninterrupted run's"
done
last_loss() { grep -v '"split"' "$1/sft/metrics.jsonl" | tail -1 | sed 's/.*"loss":\([^,]*\).*/\1/'; }
[ "$(last_loss "$out")" = "$(last_loss "$killed")" ] || fail "final sft loss differs after resume"
echo "pipeline_cli_test: killed during sft and re-run: weights equal the uninterrupted run's"

# Slurm scripts.
"$steerlm" pipeline submit "$tiny" --set output_dir="$root/slurm" --dry-run >"$root/submit.out"
script="$root/slurm/slurm/annotate.sbatch"
for text in "#SBATCH --ntasks=2" "#SBATCH --signal=USR1@" "#SBATCH --requeue" "srun --mpi=pmix" \
  "--job annotate"; do
  grep -qe "$text" "$script" || fail "$script lacks '$text'"
done
echo "pipeline_cli_test: submit --dry-run writes sbatch scripts"
