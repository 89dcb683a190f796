#!/usr/bin/env bash
# Steerability quality bar (DESIGN §6, issue 7): trains the shipped tiny ACSFT model (sft_tiny)
# and tiny attribute model (attr_tiny) in full on the embedded default, then runs eval-steer with
# configs/stages/eval_steer_tiny.pbtxt and prints per attribute the Pearson between requested and
# predicted values and the per-level means. The bar: verbosity Pearson >= 0.5. For reference it
# also prints the attribute model's own Pearson against the true labels of the held-out split
# (eval-attr), the ceiling of what it can tell apart. Numbers are printed, never asserted.
# Usage: bench/steerability.sh [WORK_DIR] (default: out/bench_steerability); run from the root.
# Takes minutes on 2 CPU cores; existing checkpoints in WORK_DIR are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/bench_steerability}
steerlm=${STEERLM_BIN:-build/bin/steerlm}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$work"

train() {  # train COMMAND CONFIG DIR: skipped when DIR already finished
  if [ -e "$3/DONE" ]; then
    echo "steerability: reusing $3"
    return
  fi
  local start=$SECONDS
  "$steerlm" "$1" --config "$2" --set output_dir="$3" >"$3.log" 2>&1 ||
    { tail -n 20 "$3.log"; echo "steerability: $1 failed"; exit 1; }
  echo "steerability: $1 ($2) took $((SECONDS - start)) s"
}
train sft configs/stages/sft_tiny.pbtxt "$work/sft"
train train-attr configs/stages/attr_tiny.pbtxt "$work/attr"

# The attribute model on held-out labelled data: the embedded default's validation split is not
# a file, so score a fresh synthetic sample of the same distribution (another seed).
"$steerlm" data synth --output "$work/heldout.jsonl" --n 400 --seed 99 >/dev/null 2>&1
"$steerlm" eval-attr --model "$work/attr/checkpoint" --input "$work/heldout.jsonl" \
  --output "$work/eval_attr" >"$work/eval_attr.out" 2>"$work/eval_attr.log"
echo "== attribute model vs true labels (eval-attr, 400 fresh samples) =="
cat "$work/eval_attr.out"

start=$SECONDS
"$steerlm" eval-steer --config configs/stages/eval_steer_tiny.pbtxt \
  --model "$work/sft/checkpoint" --attribute-model "$work/attr/checkpoint" \
  --output "$work/steer" >"$work/steer.out" 2>"$work/steer.log"
echo "== eval-steer (configs/stages/eval_steer_tiny.pbtxt, $((SECONDS - start)) s) =="
cat "$work/steer.out"
/usr/bin/python3 - "$work/steer/eval.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))["attributes"]
pearson = report["verbosity"]["pearson"]
levels = report["verbosity"]["levels"]
ratio = levels[-1]["mean_length"] / max(levels[0]["mean_length"], 1e-9)
print(f"verbosity pearson {pearson:.3f} (bar 0.5: {'met' if pearson >= 0.5 else 'NOT met'}); "
      f"mean length at level {levels[-1]['requested']} / level {levels[0]['requested']}: "
      f"{ratio:.2f}x")
PY
