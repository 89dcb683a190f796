#!/usr/bin/env bash
# The CLI contract of DESIGN §4: `steerlm --help` lists every command and each command answers
# --help; a malformed command line exits 2 and a config mistake exits 1, each with one line on
# stderr naming what is wrong (the misspelled field with FILE:LINE); `data inspect --json` prints
# the segments form whose concatenation is the rendered text and whose trained spans are §1's.
# Usage: cli_contract_test.sh BINARY_DIR
set -euo pipefail
test_name=cli_contract_test
source "$(dirname "$0")/cli_test_lib.sh"

# Every command of DESIGN §4 in the top-level help, and --help on each (sub)command.
"${steerlm[@]}" --help >"$root/help.txt"
for command in train-attr eval-attr annotate sft generate eval-steer bootstrap data tokenizer \
    convert pipeline; do
  grep -qE "^  $command " "$root/help.txt" || fail "--help does not list $command"
done
for command in train-attr eval-attr annotate sft generate eval-steer bootstrap "data inspect" \
    "data synth" "tokenizer train" convert "pipeline run" "pipeline submit" "pipeline status"; do
  # shellcheck disable=SC2086
  "${steerlm[@]}" $command --help >/dev/null 2>&1 || fail "$command --help failed"
done

# A usage error: exit 2, one line on stderr.
status=0
"${steerlm[@]}" sft --no-such-flag >"$root/usage.out" 2>"$root/usage.err" || status=$?
[ "$status" -eq 2 ] || fail "an unknown flag exited $status, not 2"
[ "$(wc -l <"$root/usage.err")" -ge 1 ] || fail "no message for an unknown flag"

# A misspelled field: exit 1, exactly one line naming the field and FILE:LINE, no stack trace.
printf 'model { config_file: "configs/models/tiny.pbtxt" }\ntrain {\n  stpes: 3\n}\n' \
  >"$root/bad.pbtxt"
status=0
"${steerlm[@]}" sft --config "$root/bad.pbtxt" --set output_dir="$root/out" \
  >"$root/bad.out" 2>"$root/bad.err" || status=$?
[ "$status" -eq 1 ] || fail "a misspelled field exited $status, not 1"
[ "$(wc -l <"$root/bad.err")" -eq 1 ] || { cat "$root/bad.err"; fail "not one line on stderr"; }
grep -q "$root/bad.pbtxt:3" "$root/bad.err" || { cat "$root/bad.err"; fail "no FILE:LINE"; }
grep -q "stpes" "$root/bad.err" || { cat "$root/bad.err"; fail "the field is not named"; }
[ ! -e "$root/out" ] || fail "the output dir was created before validation"

# data inspect --json on a hand-written NeMo-Aligner record: exact segments; with the Llama 2
# tokenizer, the token count of the whole rendered string (BOS included).
printf '%s\n' '{"system": "", "conversations": [{"from": "User", "value": "Hi"}, {"from": "Assistant", "value": "Hello!", "label": "helpfulness:4,verbosity:1"}], "mask": "User", "type": "VALUE_TO_TEXT"}' \
  >"$root/one.jsonl"
"${steerlm[@]}" data inspect --input "$root/one.jsonl" --json >"$root/plain.json" 2>/dev/null
tokenizer=../shared/data/tokenizers/llama2/tokenizer.model
if [ -e "$tokenizer" ]; then
  "${steerlm[@]}" data inspect --input "$root/one.jsonl" --json --tokenizer "$tokenizer" \
    >"$root/tokens.json" 2>/dev/null
else
  echo "$test_name: ../shared/data absent; the token count is not checked"
fi
# tokenizer train: a SentencePiece model of the asked size from a synthesised corpus, which
# data inspect then uses (the markers and newlines survive: the rendered text round-trips).
"${steerlm[@]}" data synth --output "$root/corpus.jsonl" --n 200 --seed 3 >/dev/null 2>&1
"${steerlm[@]}" tokenizer train --input "$root/corpus.jsonl" --vocab-size 512 \
  --output "$root/tok.model" >"$root/tok.out" 2>&1 || { cat "$root/tok.out"; fail "tokenizer train"; }
"${steerlm[@]}" data inspect --input "$root/one.jsonl" --json --tokenizer "$root/tok.model" \
  >"$root/own_tokens.json" 2>/dev/null || fail "data inspect with the trained tokenizer"
/usr/bin/python3 - "$root/own_tokens.json" <<'PY'
import json, sys
record = json.loads(open(sys.argv[1]).read())
assert 20 < record["tokens"] < 120, record
PY

/usr/bin/python3 - "$root/plain.json" "$root/tokens.json" <<'PY'
import json, os, sys
expected = [
    {"text": "<extra_id_0>System\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\n"
             "<extra_id_2>helpfulness:4,verbosity:1\n", "trained": False},
    {"text": "Hello!\n<extra_id_1>", "trained": True},
]
plain = [json.loads(line) for line in open(sys.argv[1])]
assert plain == [{"segments": expected}], plain
if os.path.exists(sys.argv[2]):
    with_tokens = [json.loads(line) for line in open(sys.argv[2])]
    assert with_tokens == [{"segments": expected, "tokens": 60}], with_tokens
print("cli_contract_test: help, exit codes, FILE:LINE and inspect --json as promised")
PY
