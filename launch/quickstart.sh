#!/usr/bin/env bash
# README command 1: installs the dependencies, builds steerlm and runs the main job, the whole
# SteerLM pipeline (synthetic data -> tokenizer -> attribute model -> annotation -> ACSFT ->
# steerability evaluation) on the embedded default dataset, with 4 MPI ranks on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh
bash launch/build.sh
build_dir=${STEERLM_BUILD_DIR:-build}
output_dir=${STEERLM_OUTPUT_DIR:-out/quickstart}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 \
  "$build_dir/bin/steerlm" pipeline run configs/pipelines/quickstart.pbtxt \
  --set output_dir="$output_dir"
