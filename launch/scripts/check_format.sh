#!/usr/bin/env bash
# Fails when any C++/CUDA source differs from .clang-format's output (100-column limit, STYLE 1).
# Usage: launch/scripts/check_format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t sources < <(git ls-files --cached --others --exclude-standard \
  '*.h' '*.cc' '*.cpp' '*.cu' '*.cuh' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${sources[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${sources[@]}" 2>/tmp/steerlm_format.$$; then
  grep -E '^[^ ].*error:' /tmp/steerlm_format.$$ | head -20
  rm -f /tmp/steerlm_format.$$
  echo "check_format: the sources above are not formatted;" \
    "run launch/scripts/check_format.sh --fix"
  exit 1
fi
rm -f /tmp/steerlm_format.$$
echo "check_format: ${#sources[@]} files formatted"
