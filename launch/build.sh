#!/usr/bin/env bash
# Configures and builds steerlm into ${STEERLM_BUILD_DIR:-build} (Release, CUDA when found).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${STEERLM_BUILD_DIR:-build}
jobs=${STEERLM_JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${STEERLM_CMAKE_ARGS:-}
cmake --build "$build_dir" -j"$jobs"
