#!/usr/bin/env bash
# End to end from the CLI (issue 6): a tiny attribute model trained for a few steps, then
#  - annotate at DP=1 and DP=2: byte-identical outputs; labels equal Python's round() (half to
#    even) of the clamped raw values; every input field kept; records in input order;
#  - a rank that dies after writing one shard, then a re-run: the output equals the
#    uninterrupted run's byte for byte, and the re-run reuses the finished shards;
#  - bad input: FAIL names file:line, SKIP lists the line under the work directory;
#  - annotate at TP=2, TP=2 x DP=2 and TP=2 x PP=2: one rank's labels, raw values within 1e-5;
#  - on a terminal, rank 0 draws a progress bar;
#  - eval-attr writes eval.json with the model's and both baselines' metrics;
#  - the NeMo-Aligner regression-RM format trains and evaluates, its -100 values left out.
# Usage: annotate_cli_test.sh BINARY_DIR
set -euo pipefail
test_name=annotate_cli_test
source "$(dirname "$0")/cli_test_lib.sh"
train=(--config configs/stages/attr_tiny.pbtxt --set train.steps=4 --set train.global_batch_size=8
       --set train.seq_len=128 --set train.val_every=0 --set checkpoint.every_steps=0)

# A tiny attribute model, and 30 records to annotate.
"${steerlm[@]}" train-attr "${train[@]}" --set "data.train=embedded:default?n=64" \
  --set output_dir="$root/attr" >"$root/attr.out" 2>&1 || { cat "$root/attr.out"; fail "train"; }
"${steerlm[@]}" data synth --output "$root/in.jsonl" --n 30 --seed 7 >/dev/null 2>&1
model="$root/attr/checkpoint"
grep -q "attribute_baselines" "$model/manifest.pbtxt" || fail "manifest lacks attribute_baselines"

# DP=1 and DP=2, 7 records a shard.
shards=(--set annotate.shard_records=7 --set annotate.batch_tokens=1024)
mpi 1 annotate --model "$model" --input "$root/in.jsonl" --output "$root/dp1.jsonl" "${shards[@]}" \
  >"$root/dp1.out" 2>&1 || { cat "$root/dp1.out"; fail "annotate DP=1"; }
mpi 2 annotate --model "$model" --input "$root/in.jsonl" --output "$root/dp2.jsonl" "${shards[@]}" \
  >"$root/dp2.out" 2>&1 || { cat "$root/dp2.out"; fail "annotate DP=2"; }
cmp "$root/dp1.jsonl" "$root/dp2.jsonl" || fail "DP=2 output differs from DP=1"
[ -e "$root/dp1.jsonl.work/DONE" ] || fail "no DONE in the work directory"
grep -q "records/s" "$root/dp1.jsonl.work/logs/steerlm.rank0.log" || fail "no records/s logged"
grep -q "ETA" "$root/dp1.jsonl.work/logs/steerlm.rank0.log" || fail "no progress ETA logged"
# On a terminal (a pseudo-terminal from script(1)) rank 0 draws a progress bar instead.
if command -v script >/dev/null; then
  script -qec "${steerlm[*]} annotate --model $model --input $root/in.jsonl \
    --output $root/bar.jsonl ${shards[*]} 2>&1" /dev/null >"$root/bar.out" ||
    { cat "$root/bar.out"; fail "annotate on a terminal"; }
  tr '\r' '\n' <"$root/bar.out" | grep -aq '^\[##############################\] 5/5 shards' ||
    { cat "$root/bar.out"; fail "no progress bar on a terminal"; }
  cmp "$root/dp1.jsonl" "$root/bar.jsonl" || fail "output on a terminal differs"
else
  echo "annotate_cli_test: script(1) absent; the terminal progress bar is not checked"
fi

/usr/bin/python3 - "$root/in.jsonl" "$root/dp1.jsonl" <<'PY'
import json, sys
inputs = [json.loads(l) for l in open(sys.argv[1])]
outputs = [json.loads(l) for l in open(sys.argv[2])]
assert len(inputs) == len(outputs) == 30, (len(inputs), len(outputs))
names = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
turns = 0
for source, record in zip(inputs, outputs):
    for key, value in source.items():
        if key != "conversations":
            assert record[key] == value, (key, record.get(key), value)
    assert len(record["conversations"]) == len(source["conversations"])
    for a, b in zip(source["conversations"], record["conversations"]):
        assert a["value"] == b["value"] and a["from"] == b["from"], "records out of order"
        if b["from"] != "Assistant":
            assert "attribute_values" not in b
            continue
        turns += 1
        values = b["attribute_values"]
        assert list(values) == sorted(names), values
        expected = ",".join(f"{n}:{round(min(max(values[n], 0.0), 4.0))}" for n in names)
        assert b["label"] == expected, (b["label"], expected)
print(f"annotate_cli_test: 30 records, {turns} assistant turns labelled; DP=2 == DP=1 bytes")
PY

# A rank killed after its first shard, then a re-run: identical bytes, finished shards reused.
if mpi 2 annotate --model "$model" --input "$root/in.jsonl" --output "$root/kill.jsonl" \
    "${shards[@]}" --set annotate.fail_after_shards=1 --set annotate.fail_rank=1 \
    >"$root/kill.out" 2>&1; then
  fail "the injected rank failure did not fail the run"
fi
[ ! -e "$root/kill.jsonl" ] || fail "a failed run left a merged output"
done_before=$(ls "$root/kill.jsonl.work/shards/" | grep -c '\.done$' || true)
[ "$done_before" -ge 1 ] && [ "$done_before" -lt 5 ] || fail "$done_before shards done before rerun"
mpi 2 annotate --model "$model" --input "$root/in.jsonl" --output "$root/kill.jsonl" "${shards[@]}" \
  >"$root/rerun.out" 2>&1 || { cat "$root/rerun.out"; fail "re-run"; }
cmp "$root/dp1.jsonl" "$root/kill.jsonl" || fail "re-run output differs from uninterrupted run"
grep -q "$done_before/5 shards reused" "$root/kill.jsonl.work/logs/steerlm.rank0.log" ||
  fail "re-run did not reuse the $done_before finished shards"
echo "annotate_cli_test: killed rank after $done_before/5 shards; re-run output identical"

# Bad input: FAIL names the line; SKIP lists it and annotates the rest.
{ head -n 3 "$root/in.jsonl"; echo '{"not json'; tail -n +4 "$root/in.jsonl"; } >"$root/bad.jsonl"
if "${steerlm[@]}" annotate --model "$model" --input "$root/bad.jsonl" --output "$root/bad.out.jsonl" \
    >"$root/badfail.out" 2>&1; then fail "FAIL policy accepted a malformed line"; fi
grep -q "bad.jsonl:4" "$root/badfail.out" || { cat "$root/badfail.out"; fail "no file:line"; }
# (one rank with one thread, like the DP=1 run: other thread counts may round differently)
mpi 1 annotate --model "$model" --input "$root/bad.jsonl" --output "$root/skip.jsonl" \
  --set data.on_bad_record=SKIP "${shards[@]}" >"$root/skip.out" 2>&1 || fail "SKIP run failed"
cmp "$root/dp1.jsonl" "$root/skip.jsonl" || fail "SKIP output differs from the clean input's"
grep -q 'bad.jsonl:4' "$root/skip.jsonl.work/data/skipped_records.jsonl" || fail "skip listing"

# TP=2 (one replica of two ranks), TP=2 x DP=2 and TP=2 x PP=2: the same labels as one rank, raw
# values within 1e-5 (TP sums add in another order).
layouts=("2 tp2 --set parallel.tp=2" "4 tp2dp2 --set parallel.tp=2"
         "4 tp2pp2 --set parallel.tp=2 --set parallel.pp=2")
for layout in "${layouts[@]}"; do
  read -r ranks name settings <<<"$layout"
  # shellcheck disable=SC2086
  mpi "$ranks" annotate --model "$model" --input "$root/in.jsonl" --output "$root/$name.jsonl" \
    "${shards[@]}" $settings >"$root/$name.out" 2>&1 || { cat "$root/$name.out"; fail "$name"; }
done
/usr/bin/python3 - "$root/dp1.jsonl" "$root/tp2.jsonl" "$root/tp2dp2.jsonl" "$root/tp2pp2.jsonl" <<'PY'
import json, sys
reference = [json.loads(l) for l in open(sys.argv[1])]
for path in sys.argv[2:]:
    records = [json.loads(l) for l in open(path)]
    assert len(records) == len(reference), path
    worst = 0.0
    for a, b in zip(reference, records):
        for x, y in zip(a["conversations"], b["conversations"]):
            assert x.get("label") == y.get("label"), (path, x.get("label"), y.get("label"))
            for name, value in x.get("attribute_values", {}).items():
                worst = max(worst, abs(value - y["attribute_values"][name]))
    assert worst <= 1e-5, (path, worst)
    print(f"annotate_cli_test: {path.split('/')[-1]} labels equal one rank's, raw within {worst:.1e}")
PY

"${steerlm[@]}" eval-attr --model "$model" --input "$root/in.jsonl" --output "$root/eval" \
  >"$root/eval.out" 2>&1 || { cat "$root/eval.out"; fail "eval-attr"; }
[ -e "$root/eval/DONE" ] || fail "eval-attr wrote no DONE"
grep -q "verbosity" "$root/eval.out" || fail "eval-attr printed no table"

# Preference pairs: pairs.<name>.accuracy over the pairs given for that attribute.
/usr/bin/python3 - "$root/in.jsonl" "$root/pairs.jsonl" <<'PY'
import json, sys
out = open(sys.argv[2], "w")
for line in open(sys.argv[1]):
    turns = json.loads(line)["conversations"]
    out.write(json.dumps({"prompt": turns[0]["value"], "chosen": turns[1]["value"],
                          "rejected": "ok.", "attribute": "verbosity"}) + "\n")
PY
"${steerlm[@]}" eval-attr --model "$model" --input "$root/pairs.jsonl" --output "$root/pairs" \
  >"$root/pairs.out" 2>&1 || { cat "$root/pairs.out"; fail "eval-attr on pairs"; }
/usr/bin/python3 -c "
import json, sys
pairs = json.load(open(sys.argv[1]))['pairs']
assert list(pairs) == ['verbosity'] and pairs['verbosity']['count'] == 30, pairs
assert 0 <= pairs['verbosity']['accuracy'] <= 1, pairs
print('annotate_cli_test: verbosity pair accuracy', pairs['verbosity']['accuracy'])
" "$root/pairs/eval.json"

# The regression-RM format: 9 values, -100 where missing (here verbosity on even lines).
/usr/bin/python3 - "$root/in.jsonl" "$root/rm.jsonl" <<'PY'
import json, sys
out = open(sys.argv[2], "w")
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    text = f"<extra_id_0>System\n{r['system']}\n"
    for turn in r["conversations"][:2]:
        text += f"<extra_id_1>{turn['from']}\n{turn['value']}\n"
    label = dict(kv.split(":") for kv in r["conversations"][1]["label"].split(","))
    names = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
    values = [-100] * 4 + [float(label.get(n, -100)) for n in names]
    if i % 2 == 0:
        values[8] = -100
    out.write(json.dumps({"text": text + "<extra_id_2>", "label": values}) + "\n")
PY
"${steerlm[@]}" train-attr "${train[@]}" --set "data.train=$root/rm.jsonl" \
  --set output_dir="$root/rm" >"$root/rm.out" 2>&1 || { cat "$root/rm.out"; fail "train on rm"; }
"${steerlm[@]}" eval-attr --model "$root/rm/checkpoint" --input "$root/rm.jsonl" \
  --output "$root/rm_eval" >"$root/rm_eval.out" 2>&1 || { cat "$root/rm_eval.out"; fail "eval rm"; }

/usr/bin/python3 - "$root/eval/eval.json" "$root/rm_eval/eval.json" <<'PY'
import json, sys
names = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
plain, rm = (json.load(open(p)) for p in sys.argv[1:])
for result in (plain, rm):
    for section in (result["attributes"], result["baselines"]["mean"], result["baselines"]["length"]):
        assert sorted(section) == sorted(names), sorted(section)
        for metrics in section.values():
            assert {"mae", "rmse", "pearson", "accuracy"} <= set(metrics), metrics
            assert 0 <= metrics["accuracy"] <= 1 and metrics["rmse"] >= metrics["mae"] >= 0
assert plain["attributes"]["verbosity"]["count"] == 30, plain["attributes"]["verbosity"]
# -100 values are not evaluated: verbosity is present on the 15 odd lines only.
assert rm["attributes"]["verbosity"]["count"] == 15, rm["attributes"]["verbosity"]
assert rm["attributes"]["helpfulness"]["count"] == 30, rm["attributes"]["helpfulness"]
assert rm["baselines"]["mean"]["verbosity"]["count"] == 15
print("annotate_cli_test: eval-attr verbosity rmse model %.3f mean %.3f length %.3f" % (
    plain["attributes"]["verbosity"]["rmse"], plain["baselines"]["mean"]["verbosity"]["rmse"],
    plain["baselines"]["length"]["verbosity"]["rmse"]))
PY
echo "annotate_cli_test: passed"
