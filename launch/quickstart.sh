#!/usr/bin/env bash
# README command 1: installs the dependencies, builds steerlm and runs the main job, the SteerLM
# recipe on the embedded default dataset with 4 MPI ranks on one machine: attribute model ->
# attribute-conditioned SFT -> steered generations side by side.
#
# TODO(pipeline): run configs/pipelines/quickstart.pbtxt through `steerlm pipeline run` (issue 8)
# once it lands, adding annotation and the steerability table; the README command stays the same.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh
bash launch/build.sh
build_dir=${STEERLM_BUILD_DIR:-build}
output_dir=${STEERLM_OUTPUT_DIR:-out/quickstart}
steerlm="$build_dir/bin/steerlm"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=(mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1)

echo "== 1/3 attribute model (train-attr, 4 data-parallel ranks) =="
"${ranks[@]}" "$steerlm" train-attr --config configs/stages/attr_tiny.pbtxt \
  --set output_dir="$output_dir/train_attr"

echo "== 2/3 attribute-conditioned SFT (sft, 4 data-parallel ranks) =="
"${ranks[@]}" "$steerlm" sft --config configs/stages/sft_tiny.pbtxt \
  --set output_dir="$output_dir/sft"

echo "== 3/3 steered generations: same prompt, requested verbosity 0, 2, 4 =="
for prompt in "What is 7 times 8?" "How many minutes are in 3 hours?"; do
  echo "prompt: $prompt"
  for verbosity in 0 2 4; do
    text=$("$steerlm" generate --model "$output_dir/sft/checkpoint" --prompt "$prompt" \
      --attributes "helpfulness=4,correctness=4,coherence=4,complexity=2,verbosity=$verbosity" \
      --temperature 0 --max-new-tokens 96 2>/dev/null)
    printf '  verbosity=%d: %s\n' "$verbosity" "$text"
  done
done
echo "outputs: $output_dir (metrics.jsonl, checkpoints and logs per job)"
