#!/usr/bin/env bash
# README command 2: installs the dependencies, builds everything (CUDA sources too, when the
# toolkit is present) and runs the whole test suite, formatting check included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh
bash launch/build.sh
build_dir=${STEERLM_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
