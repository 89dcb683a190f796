#!/usr/bin/env bash
# Builds the GPU checks for sm_90 (H100/H200) in a build folder of their own and gathers into one
# folder (tests/gpu/package/, git-ignored, under 60 MiB) all that a bare CUDA machine lacks to run
# them with tests/gpu/run_device_checks.sh:
#   bin/         the check binaries: gpu_tests and llama_step_bench
#   lib/         every shared library ldd resolves outside the CUDA toolkit and driver: Open MPI,
#                glog, gflags, protobuf, OpenBLAS, libgomp, libstdc++, ... copied from this system
#   lib/glibc/   this system's loader and C library, used only when the GPU machine's glibc is
#                older than the one the binaries were linked against
#   MANIFEST     commit, build settings, and where each library came from
# The CUDA runtime, cuBLAS/cuBLASLt, NCCL and the driver are not copied: the GPU machine has them
# (run_device_checks.sh checks that they resolve and says which are missing).
#
# Usage: tests/gpu/package.sh
# Env: STEERLM_GPU_BUILD_DIR (build_gpu_sm90), STEERLM_GPU_PACKAGE_DIR (tests/gpu/package),
#      STEERLM_JOBS (1).
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${STEERLM_GPU_BUILD_DIR:-build_gpu_sm90}
package=${STEERLM_GPU_PACKAGE_DIR:-tests/gpu/package}
jobs=${STEERLM_JOBS:-1}
limit_mib=60
binaries=(gpu_tests llama_step_bench)

# Build the check binaries for sm_90 only: one architecture keeps the device code small.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSTEERLM_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DSTEERLM_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j"$jobs" --target "${binaries[@]}"

# Start from an empty package.
rm -rf "$package"
mkdir -p "$package/bin" "$package/lib/glibc"
for binary in "${binaries[@]}"; do
  cp "$build_dir/bin/$binary" "$package/bin/"
done

# Libraries the GPU machine provides itself (the toolkit and the driver) stay out; glibc goes to
# lib/glibc, away from the LD_LIBRARY_PATH of the normal run (a foreign libc under the host's
# loader would crash).
provided_by_gpu_machine() {
  case "$1" in
    libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libnccl.so* | libnvidia*)
      return 0
      ;;
  esac
  return 1
}
is_glibc() {
  case "$1" in
    ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libresolv.so*)
      return 0
      ;;
  esac
  return 1
}

# The Debian package that installed a file (Debian 12 merges /lib into /usr/lib; dpkg knows one).
debian_package_of() {
  { dpkg -S "$1" 2>/dev/null || dpkg -S "${1#/usr}" 2>/dev/null || echo "not from dpkg"; } |
    cut -d: -f1 | head -1
}

manifest="$package/MANIFEST"
{
  echo "steerlm GPU check package"
  changes=$(git diff --quiet HEAD -- . || echo ' (+ local changes)')
  echo "commit: $(git rev-parse --short=12 HEAD)$changes"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cuda architectures: 90; nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "glibc of the build: $(ldd --version | head -1)"
  echo "binaries: ${binaries[*]}"
  echo "expected from the GPU machine: libcudart.so.13, libcublas.so.13, libcublasLt.so.13,"
  echo "  libnccl.so.2, libcuda.so.1 (driver)"
  echo "libraries:"
} >"$manifest"

missing=0
for binary in "${binaries[@]}"; do
  while read -r name path; do
    if [ "$path" = "not found" ]; then
      echo "package.sh: $binary needs $name, which ldd cannot find here" >&2
      missing=1
      continue
    fi
    [ -n "$path" ] || continue
    provided_by_gpu_machine "$name" && continue
    if is_glibc "$name"; then destination="$package/lib/glibc"; else destination="$package/lib"; fi
    [ -e "$destination/$name" ] && continue
    cp -L "$path" "$destination/$name"
    echo "  $name <- $(readlink -f "$path") ($(debian_package_of "$(readlink -f "$path")"))" \
      >>"$manifest"
  done < <(ldd "$build_dir/bin/$binary" | awk '
    /=> not found/ { print $1, "not found"; next }
    /=>/ { print $1, $3; next }
    /ld-linux/ { n = split($1, parts, "/"); print parts[n], $1 }')
done
[ "$missing" = 0 ] || exit 1

# Symbols are dropped from the copied libraries only (the binaries keep theirs for stack traces).
strip --strip-unneeded "$package"/lib/*.so* 2>/dev/null || true
chmod +x "$package"/lib/glibc/ld-linux* 2>/dev/null || true

size_kib=$(du -sk "$package" | cut -f1)
size_mib=$(((size_kib + 1023) / 1024))
echo "size: ${size_kib} KiB" >>"$manifest"
echo "package.sh: $package holds ${binaries[*]} and $(ls "$package/lib" "$package/lib/glibc" |
  grep -c '\.so') libraries, ${size_kib} KiB (${size_mib} MiB, limit ${limit_mib} MiB)"
if [ "$size_mib" -ge "$limit_mib" ]; then
  echo "package.sh: the package is over ${limit_mib} MiB" >&2
  exit 1
fi
