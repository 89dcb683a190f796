# Sourced by the bench scripts (after `set -euo pipefail` and a default `work`): moves to the
# repository root, sets `steerlm`, and takes WORK_DIR when the first argument is one; the
# remaining arguments stay in "$@".
cd "$(dirname "${BASH_SOURCE[0]}")/.."
steerlm=${STEERLM_BIN:-build/bin/steerlm}
if [ $# -gt 0 ] && [ "$1" != "--set" ]; then
  work=$1
  shift
fi
