#!/usr/bin/env bash
# Attribute model quality on real HelpSteer data (issue 6 test). Splits the HelpSteer rows in
# ../shared/data (HelpSteer v1 sample + HelpSteer2's first 100 rows) by prompt: 20% of the prompts,
# with all their rows, are held out (seeded, so every run holds out the same ones). Trains
# configs/stages/attr_helpsteer_cpu.pbtxt on the rest (the held-out file is its validation set),
# runs eval-attr on the held-out rows and prints, for all five attributes, MAE / RMSE / Pearson /
# accuracy of the model and of both baselines (training mean; least squares on response length),
# read from eval.json. The bar: RMSE below the mean baseline's on verbosity and on at least two
# other attributes. Printed, never asserted.
# Usage: bench/attr_quality.sh [WORK_DIR] [--set FIELD=VALUE ...] (default out/bench_attr_quality);
# run from anywhere. Extra --set arguments go to train-attr (e.g. --set train.steps=500).
# A finished training in WORK_DIR is reused; about 5 minutes on 1 core.
set -euo pipefail
work=out/bench_attr_quality
source "$(dirname "$0")/bench_args.sh"
config=configs/stages/attr_helpsteer_cpu.pbtxt
data=../shared/data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$work"

# Split by prompt (never by row: HelpSteer has several responses per prompt).
/usr/bin/python3 - "$work" "$data/helpsteer/helpsteer_train_sample.jsonl" \
  "$data/helpsteer2/helpsteer2_train_first100.jsonl" <<'PY'
import json, random, sys
work, paths = sys.argv[1], sys.argv[2:]
rows = [line for path in paths for line in open(path, encoding="utf-8") if line.strip()]
prompts = sorted({json.loads(line)["prompt"] for line in rows})
random.Random(1).shuffle(prompts)
held_out = set(prompts[: round(0.2 * len(prompts))])
split = {"train": [], "heldout": []}
for line in rows:
    split["heldout" if json.loads(line)["prompt"] in held_out else "train"].append(line)
for name, lines in split.items():
    with open(f"{work}/{name}.jsonl", "w", encoding="utf-8") as out:
        out.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
print(f"attr_quality: {len(prompts)} prompts, {len(held_out)} held out; "
      f"{len(split['train'])} training rows, {len(split['heldout'])} held-out rows")
PY

if [ -e "$work/attr/DONE" ]; then
  echo "attr_quality: reusing $work/attr"
else
  start=$SECONDS
  "$steerlm" train-attr --config "$config" --set output_dir="$work/attr" \
    --set data.train="$work/train.jsonl" --set data.validation="$work/heldout.jsonl" "$@" \
    >"$work/attr.log" 2>&1 || { tail -n 20 "$work/attr.log"; echo "attr_quality: train-attr failed"; exit 1; }
  echo "attr_quality: train-attr ($config $*) took $((SECONDS - start)) s"
fi
"$steerlm" eval-attr --config "$config" --model "$work/attr/checkpoint" \
  --input "$work/heldout.jsonl" --output "$work/eval" >"$work/eval.out" 2>"$work/eval.log" ||
  { tail -n 20 "$work/eval.log"; echo "attr_quality: eval-attr failed"; exit 1; }

/usr/bin/python3 - "$work/eval/eval.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rows = [("model", report["attributes"]), ("mean", report["baselines"]["mean"]),
        ("length", report["baselines"]["length"])]
print("== held-out HelpSteer rows (prompts not trained on): eval-attr ==")
print(f"{'attribute':<12} {'predictor':<7} {'MAE':>6} {'RMSE':>6} {'Pearson':>8} {'acc':>6}")
order = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]  # HelpSteer's
names = [n for n in order if n in report["attributes"]]
names += sorted(n for n in report["attributes"] if n not in order)
for name in names:
    for label, table in rows:
        m = table[name]
        pearson = m["pearson"] if m["pearson"] is not None else float("nan")
        if abs(pearson) < 5e-4:
            pearson = 0.0  # a constant predictor: no "-0.000"
        print(f"{name:<12} {label:<7} {m['mae']:6.3f} {m['rmse']:6.3f} {pearson:8.3f} "
              f"{m['accuracy']:6.3f}")
beats = [n for n in names
         if report["attributes"][n]["rmse"] < report["baselines"]["mean"][n]["rmse"]]
met = "verbosity" in beats and len(beats) >= 3
print(f"RMSE below the mean baseline on: {', '.join(beats) or 'none'} "
      f"(bar: verbosity and two others: {'met' if met else 'NOT met'})")
PY
