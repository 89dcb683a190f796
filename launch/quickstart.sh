#!/usr/bin/env bash
# README command 1: installs the dependencies, builds steerlm and runs the SteerLM recipe on the
# embedded default dataset as one pipeline, configs/pipelines/quickstart.pbtxt, on 4 MPI ranks of
# one machine: data -> tokenizer -> attribute model -> annotation (+ its evaluation beside it) ->
# attribute-conditioned SFT (TP=2 x DP=2) -> steerability evaluation. It ends with steered
# generations side by side (same prompt, requested verbosity 0, 2, 4); the pipeline's summary
# above them has each job's duration, key metrics and the steerability table.
# Extra arguments go to `steerlm pipeline run`, e.g. --set sft.parallel.tp=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh
bash launch/build.sh
build_dir=${STEERLM_BUILD_DIR:-build}
output_dir=${STEERLM_OUTPUT_DIR:-out/quickstart}
steerlm="$build_dir/bin/steerlm"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== the SteerLM pipeline (configs/pipelines/quickstart.pbtxt, 4 ranks) =="
status=0
mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 \
  "$steerlm" pipeline run configs/pipelines/quickstart.pbtxt --set output_dir="$output_dir" "$@" ||
  status=$?

echo "== steered generations: same prompt, requested verbosity 0, 2, 4 =="
if [ -e "$output_dir/sft/DONE" ]; then
  for prompt in "What is 7 times 8?" "How many minutes are in 3 hours?"; do
    echo "prompt: $prompt"
    for verbosity in 0 2 4; do
      text=$("$steerlm" generate --model "$output_dir/sft/checkpoint" --prompt "$prompt" \
        --attributes "helpfulness=4,correctness=4,coherence=4,complexity=2,verbosity=$verbosity" \
        --temperature 0 --max-new-tokens 96 2>/dev/null)
      printf '  verbosity=%d: %s\n' "$verbosity" "$text"
    done
  done
fi
"$steerlm" pipeline status configs/pipelines/quickstart.pbtxt --set output_dir="$output_dir" |
  sed -n '/^steerability/,$p'
echo "outputs: $output_dir (pipeline_state.json, pipeline.log; per job: metrics.jsonl, logs/)"
exit "$status"
