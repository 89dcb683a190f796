# Shared by the CLI tests (sourced): a scratch directory removed at exit, the binary, `mpi` and
# `fail`. Set test_name before sourcing; $1 of the test is BINARY_DIR.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
steerlm=("$1/bin/steerlm")
mpi() {  # mpi RANKS ARGS...
  local ranks=$1
  shift
  mpirun --oversubscribe --allow-run-as-root -np "$ranks" -x OMP_NUM_THREADS=1 \
    -x OPENBLAS_NUM_THREADS=1 "${steerlm[@]}" "$@"
}
fail() { echo "$test_name: $*"; exit 1; }
