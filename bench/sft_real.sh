#!/usr/bin/env bash
# Real-data ACSFT (issue 7 test): runs configs/stages/sft_real_cpu.pbtxt (the NeMo-Aligner SteerLM
# sample and the oasst1 conversations from ../shared/data, Llama 2 tokenizer, the tiny model)
# end to end and prints eval.json's val_loss (true labels) and val_loss_shuffled_labels (labels
# shuffled across the validation samples), and their gap. Printed, never asserted.
# Usage: bench/sft_real.sh [WORK_DIR] [--set FIELD=VALUE ...] (default out/bench_sft_real); run
# from anywhere. A finished run in WORK_DIR is reused. A few minutes on 1 core.
set -euo pipefail
work=out/bench_sft_real
source "$(dirname "$0")/bench_args.sh"
config=configs/stages/sft_real_cpu.pbtxt
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$work"

if [ -e "$work/sft/DONE" ]; then
  echo "sft_real: reusing $work/sft"
else
  start=$SECONDS
  "$steerlm" sft --config "$config" --set output_dir="$work/sft" "$@" >"$work/sft.log" 2>&1 ||
    { tail -n 20 "$work/sft.log"; echo "sft_real: sft failed"; exit 1; }
  echo "sft_real: sft ($config $*) took $((SECONDS - start)) s"
fi
grep -h '"split":"data"' "$work/sft/metrics.jsonl" | head -n 1 | sed 's/^/sft_real: data: /'
/usr/bin/python3 - "$work/sft/eval.json" "$work/sft/metrics.jsonl" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
steps = [json.loads(line) for line in open(sys.argv[2])]
train = [line for line in steps if "split" not in line]
true, shuffled = report["val_loss"], report["val_loss_shuffled_labels"]
print(f"sft_real: {len(train)} steps, final training loss {train[-1]['loss']:.4f}")
print(f"val_loss (true labels)        {true:.4f}")
print(f"val_loss_shuffled_labels      {shuffled:.4f}")
print(f"gap (shuffled - true)         {shuffled - true:+.4f}")
PY
