// bfloat16 <-> float conversion shared by the host kernels and the CUDA kernels, so that both
// backends round identically (the CUDA backend is checked bit for bit against the host).
//
// bf16 is the top 16 bits of an IEEE float: 1 sign, 8 exponent, 7 mantissa bits. Narrowing rounds
// to nearest, ties to even; NaN stays a (quiet) NaN and infinities stay infinite.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define STEERLM_HOST_DEVICE __host__ __device__
#else
#define STEERLM_HOST_DEVICE
#endif

namespace steerlm {

STEERLM_HOST_DEVICE inline uint32_t float_bits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
#endif
}

STEERLM_HOST_DEVICE inline float float_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
#endif
}

// Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate. A NaN is forced
// quiet instead, since the carry could otherwise turn a NaN payload into infinity.
STEERLM_HOST_DEVICE inline uint16_t float_to_bf16(float value) {
  const uint32_t bits = float_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  const uint32_t lowest_kept_bit = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lowest_kept_bit) >> 16);
}

STEERLM_HOST_DEVICE inline float bf16_to_float(uint16_t value) {
  return float_from_bits(static_cast<uint32_t>(value) << 16);
}

}  // namespace steerlm
