// Fused causal attention kernels; runtime/kernels/attention.cc is the reference (see
// flash_attention.h for the work split).
#include <glog/logging.h>

#include <cmath>

#include "runtime/cuda/attention_softmax.h"
#include "runtime/cuda/flash_attention.h"
#include "runtime/cuda/kernel_util.cuh"

namespace steerlm::cuda {
namespace {

constexpr int kWarps = 8;  // rows (queries or keys) per block, one per warp
constexpr int kTile = 32;  // rows per shared-memory tile, one per lane
constexpr unsigned kFullMask = 0xffffffffu;

struct FlashDims {
  int64_t seq, heads, kv_heads, group, head_size, q_stride, kv_stride;
  float scale;
};

__device__ inline float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(kFullMask, value, offset);
  return value;
}
__device__ inline float warp_max(float value) {
  for (int offset = 16; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(kFullMask, value, offset));
  }
  return value;
}

// Row `row` of `count` (T, HS) rows at `base` (token stride `stride`) into shared (padded
// width), zero past the sequence.
__device__ inline void load_tile(const uint16_t* base, int64_t stride, int64_t first, int64_t seq,
                                 int head_size, int width, float* tile) {
  for (int i = threadIdx.x; i < kTile * head_size; i += blockDim.x) {
    const int row = i / head_size, column = i % head_size;
    const int64_t token = first + row;
    tile[row * width + column] = token < seq ? bf16_to_float(base[token * stride + column]) : 0.0f;
  }
}

// Dot product of a shared row with a shared tile row.
__device__ inline float dot(const float* a, const float* b, int head_size) {
  float total = 0.0f;
  for (int i = 0; i < head_size; ++i) total += a[i] * b[i];
  return total;
}

// The first key any query row of the block attends to (seq when none does).
__device__ inline int64_t first_key_of_block(const int32_t* starts, int64_t first, int64_t seq) {
  int64_t begin = seq;
  for (int w = 0; w < kWarps; ++w) {
    if (first + w < seq && starts[first + w] >= 0 && starts[first + w] < begin) {
      begin = starts[first + w];
    }
  }
  return begin;
}

// Forward: grid (ceil(T / 8), NH, B); warp w owns query t = 8 * blockIdx.x + w of head h.
template <int kPerLane>
__global__ void flash_forward_kernel(FlashDims d, const uint16_t* q, const uint16_t* k,
                                     const uint16_t* v, const int32_t* run_start, uint16_t* out,
                                     float* lse) {
  extern __shared__ float shared[];
  const int hs = static_cast<int>(d.head_size);
  float* k_tile = shared;                     // (32, HS + 1)
  float* v_tile = k_tile + kTile * (hs + 1);  // (32, HS)
  float* q_rows = v_tile + kTile * hs;        // (8, HS)
  __shared__ int64_t block_begin;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, g = h / d.group;
  const int64_t t_first = static_cast<int64_t>(blockIdx.x) * kWarps, t = t_first + warp;
  const int32_t* starts = run_start + b * d.seq;  // (T)
  const int64_t start = t < d.seq ? starts[t] : -1;
  const bool active = start >= 0;

  // This warp's query row, and the block's key range.
  const uint16_t* q_row = q + (b * d.seq + (t < d.seq ? t : 0)) * d.q_stride + h * hs;
  for (int i = lane; i < hs; i += 32) q_rows[warp * hs + i] = bf16_to_float(q_row[i]);
  if (threadIdx.x == 0) block_begin = first_key_of_block(starts, t_first, d.seq);
  __syncthreads();
  const int64_t t_last = (t_first + kWarps < d.seq ? t_first + kWarps : d.seq) - 1;
  const uint16_t* k_head = k + b * d.seq * d.kv_stride + g * hs;  // (T, HS), stride kv_stride
  const uint16_t* v_head = v + b * d.seq * d.kv_stride + g * hs;  // (T, HS), stride kv_stride

  // Online softmax over key tiles: m running max, l running sum, acc running P V.
  float m = -INFINITY, l = 0.0f, acc[kPerLane] = {};
  for (int64_t tile = block_begin / kTile * kTile; tile <= t_last; tile += kTile) {
    load_tile(k_head, d.kv_stride, tile, d.seq, hs, hs + 1, k_tile);
    load_tile(v_head, d.kv_stride, tile, d.seq, hs, hs, v_tile);
    __syncthreads();
    if (active && tile <= t && tile + kTile > start) {  // the warp has keys in this tile
      const int64_t s = tile + lane;
      float score = -INFINITY;
      if (s >= start && s <= t) {
        score = dot(q_rows + warp * hs, k_tile + lane * (hs + 1), hs) * d.scale;
      }
      const float new_m = fmaxf(m, warp_max(score));
      const float correction = expf(m - new_m);  // 0 on the first tile (m = -inf)
      const float p = score == -INFINITY ? 0.0f : expf(score - new_m);
      l = l * correction + warp_sum(p);
      for (int i = 0; i < kPerLane; ++i) acc[i] *= correction;
      for (int j = 0; j < kTile; ++j) {
        const float p_j = __shfl_sync(kFullMask, p, j);
        if (p_j == 0.0f) continue;
        for (int i = 0; i < kPerLane; ++i) {
          const int column = lane + 32 * i;
          if (column < hs) acc[i] += p_j * v_tile[j * hs + column];
        }
      }
      m = new_m;
    }
    __syncthreads();  // the next tile overwrites k_tile and v_tile
  }

  // out = acc / l; padding rows are zero and get lse = +inf (every exp(score - lse) is 0).
  if (t >= d.seq) return;
  uint16_t* out_row = out + (b * d.seq + t) * d.q_stride + h * hs;
  for (int i = 0; i < kPerLane; ++i) {
    const int column = lane + 32 * i;
    if (column < hs) out_row[column] = float_to_bf16(active ? acc[i] / l : 0.0f);
  }
  if (lane == 0) lse[(b * d.heads + h) * d.seq + t] = active ? m + logf(l) : INFINITY;
}

// The tensors of the backward, on the device (shapes at launch_flash_attention_backward).
struct FlashBackwardArgs {
  const uint16_t *dout, *q, *k, *v, *out;
  const float* lse;
  const int32_t* run_start;  // (B, T)
  uint16_t *dq, *dk, *dv;
  float* delta;  // (B, NH, T): D = dO . O, written by the dQ kernel, read by the dK/dV kernel
};

// Dynamic shared memory of the backward kernels: two (32, HS + 1) tiles, then two (8, HS) row
// sets (backward_shared_bytes).
struct BackwardShared {
  float* tiles[2];
  float* rows[2];
};

__device__ inline BackwardShared carve_backward_shared(int head_size) {
  extern __shared__ float shared[];
  float* tiles = shared;
  float* rows = tiles + 2 * kTile * (head_size + 1);
  return BackwardShared{{tiles, tiles + kTile * (head_size + 1)},
                        {rows, rows + kWarps * head_size}};
}

// dQ: grid (ceil(T / 8), NH, B); warp w owns query t. Also writes D_t = dO_t . O_t (B, NH, T),
// which the dK/dV kernel reads.
template <int kPerLane>
__global__ void flash_dq_kernel(FlashDims d, FlashBackwardArgs a) {
  const int hs = static_cast<int>(d.head_size);
  const BackwardShared sm = carve_backward_shared(hs);
  float *k_tile = sm.tiles[0], *v_tile = sm.tiles[1];   // (32, HS + 1) each
  float *q_rows = sm.rows[0], *dout_rows = sm.rows[1];  // (8, HS) each
  __shared__ int64_t block_begin;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, g = h / d.group;
  const int64_t t_first = static_cast<int64_t>(blockIdx.x) * kWarps, t = t_first + warp;
  const int32_t* starts = a.run_start + b * d.seq;  // (T)
  const int64_t start = t < d.seq ? starts[t] : -1;
  const bool active = start >= 0;

  // This warp's q and dO rows, and D_t.
  const int64_t row_offset = (b * d.seq + (t < d.seq ? t : 0)) * d.q_stride + h * hs;
  float partial = 0.0f;
  for (int i = lane; i < hs; i += 32) {
    q_rows[warp * hs + i] = bf16_to_float(a.q[row_offset + i]);
    const float grad = bf16_to_float(a.dout[row_offset + i]);
    dout_rows[warp * hs + i] = grad;
    partial += grad * bf16_to_float(a.out[row_offset + i]);
  }
  const float delta_t = warp_sum(partial);
  const int64_t stat_index = (b * d.heads + h) * d.seq + t;
  if (t < d.seq && lane == 0) a.delta[stat_index] = active ? delta_t : 0.0f;
  const float lse_t = t < d.seq ? a.lse[stat_index] : INFINITY;
  if (threadIdx.x == 0) block_begin = first_key_of_block(starts, t_first, d.seq);
  __syncthreads();
  const int64_t t_last = (t_first + kWarps < d.seq ? t_first + kWarps : d.seq) - 1;
  const uint16_t* k_head = a.k + b * d.seq * d.kv_stride + g * hs;
  const uint16_t* v_head = a.v + b * d.seq * d.kv_stride + g * hs;

  // dQ_t = sum_s dS_ts K_s with dS = P (dP - D) scale, P = exp(score - lse), dP = dO_t . V_s.
  float acc[kPerLane] = {};
  for (int64_t tile = block_begin / kTile * kTile; tile <= t_last; tile += kTile) {
    load_tile(k_head, d.kv_stride, tile, d.seq, hs, hs + 1, k_tile);
    load_tile(v_head, d.kv_stride, tile, d.seq, hs, hs + 1, v_tile);
    __syncthreads();
    if (active && tile <= t && tile + kTile > start) {
      const int64_t s = tile + lane;
      float dscore = 0.0f;
      if (s >= start && s <= t) {
        const float p =
            expf(dot(q_rows + warp * hs, k_tile + lane * (hs + 1), hs) * d.scale - lse_t);
        const float dp = dot(dout_rows + warp * hs, v_tile + lane * (hs + 1), hs);
        dscore = p * (dp - delta_t) * d.scale;
      }
      for (int j = 0; j < kTile; ++j) {
        const float ds_j = __shfl_sync(kFullMask, dscore, j);
        if (ds_j == 0.0f) continue;
        for (int i = 0; i < kPerLane; ++i) {
          const int column = lane + 32 * i;
          if (column < hs) acc[i] += ds_j * k_tile[j * (hs + 1) + column];
        }
      }
    }
    __syncthreads();
  }
  if (t >= d.seq) return;
  uint16_t* dq_row = a.dq + (b * d.seq + t) * d.q_stride + h * hs;
  for (int i = 0; i < kPerLane; ++i) {
    const int column = lane + 32 * i;
    if (column < hs) dq_row[column] = float_to_bf16(acc[i]);
  }
}

// dK, dV: grid (ceil(T / 8), KVH, B); warp w owns key s of KV head g and sums over the group's
// query heads in order, then over the queries t >= s of its run, tile by tile.
template <int kPerLane>
__global__ void flash_dkv_kernel(FlashDims d, FlashBackwardArgs a) {
  const int hs = static_cast<int>(d.head_size);
  const BackwardShared sm = carve_backward_shared(hs);
  float *q_tile = sm.tiles[0], *dout_tile = sm.tiles[1];  // (32, HS + 1) each
  float *k_rows = sm.rows[0], *v_rows = sm.rows[1];       // (8, HS) each
  __shared__ float lse_tile[kTile], delta_tile[kTile];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, g = blockIdx.y;
  const int64_t s_first = static_cast<int64_t>(blockIdx.x) * kWarps, s = s_first + warp;
  const int32_t* starts = a.run_start + b * d.seq;  // (T)
  const int64_t key_start = s < d.seq ? starts[s] : -1;
  const bool active = key_start >= 0;

  // This warp's key and value rows.
  const int64_t kv_offset = (b * d.seq + (s < d.seq ? s : 0)) * d.kv_stride + g * hs;
  for (int i = lane; i < hs; i += 32) {
    k_rows[warp * hs + i] = bf16_to_float(a.k[kv_offset + i]);
    v_rows[warp * hs + i] = bf16_to_float(a.v[kv_offset + i]);
  }
  __syncthreads();

  float dk_acc[kPerLane] = {}, dv_acc[kPerLane] = {};
  for (int64_t h = g * d.group; h < (g + 1) * d.group; ++h) {
    const uint16_t* q_head = a.q + b * d.seq * d.q_stride + h * hs;
    const uint16_t* dout_head = a.dout + b * d.seq * d.q_stride + h * hs;
    const float* lse_head = a.lse + (b * d.heads + h) * d.seq;      // (T)
    const float* delta_head = a.delta + (b * d.heads + h) * d.seq;  // (T)
    for (int64_t tile = s_first / kTile * kTile; tile < d.seq; tile += kTile) {
      load_tile(q_head, d.q_stride, tile, d.seq, hs, hs + 1, q_tile);
      load_tile(dout_head, d.q_stride, tile, d.seq, hs, hs + 1, dout_tile);
      if (threadIdx.x < kTile) {
        const int64_t t = tile + threadIdx.x;
        lse_tile[threadIdx.x] = t < d.seq ? lse_head[t] : INFINITY;
        delta_tile[threadIdx.x] = t < d.seq ? delta_head[t] : 0.0f;
      }
      __syncthreads();
      // Query t = tile + lane sees key s when both are in one run and t >= s.
      const int64_t t = tile + lane;
      const bool sees = active && t < d.seq && t >= s && starts[t] == key_start;
      if (__any_sync(kFullMask, sees)) {
        float p = 0.0f, dscore = 0.0f;
        if (sees) {
          p = expf(dot(q_tile + lane * (hs + 1), k_rows + warp * hs, hs) * d.scale -
                   lse_tile[lane]);
          const float dp = dot(dout_tile + lane * (hs + 1), v_rows + warp * hs, hs);
          dscore = p * (dp - delta_tile[lane]) * d.scale;
        }
        for (int j = 0; j < kTile; ++j) {
          const float p_j = __shfl_sync(kFullMask, p, j);
          const float ds_j = __shfl_sync(kFullMask, dscore, j);
          for (int i = 0; i < kPerLane; ++i) {
            const int column = lane + 32 * i;
            if (column >= hs) continue;
            dv_acc[i] += p_j * dout_tile[j * (hs + 1) + column];
            dk_acc[i] += ds_j * q_tile[j * (hs + 1) + column];
          }
        }
      }
      __syncthreads();
    }
  }
  if (s >= d.seq) return;
  for (int i = 0; i < kPerLane; ++i) {
    const int column = lane + 32 * i;
    if (column >= hs) continue;
    a.dk[kv_offset + column] = float_to_bf16(dk_acc[i]);
    a.dv[kv_offset + column] = float_to_bf16(dv_acc[i]);
  }
}

FlashDims dims_of(const kernels::AttentionShape& shape) {
  CHECK_GT(shape.kv_heads, 0);
  CHECK_EQ(shape.heads % shape.kv_heads, 0) << "query heads must be a multiple of KV heads";
  CHECK_LE(shape.head_size, kFlashMaxHeadSize)
      << "the fused attention supports head sizes up to " << kFlashMaxHeadSize
      << "; use the materialised attention (runtime/cuda/attention.h)";
  CHECK_GE(shape.q_stride, shape.heads * shape.head_size);
  CHECK_GE(shape.kv_stride, shape.kv_heads * shape.head_size);
  return FlashDims{shape.seq_len,   shape.heads,
                   shape.kv_heads,  shape.heads / shape.kv_heads,
                   shape.head_size, shape.q_stride,
                   shape.kv_stride, 1.0f / std::sqrt(static_cast<float>(shape.head_size))};
}

// Workspace: run starts (B, T) int32, then D (B, NH, T) f32.
int32_t* run_starts_of(void* workspace) {
  return static_cast<int32_t*>(workspace);
}
float* delta_of(const kernels::AttentionShape& shape, void* workspace) {
  return reinterpret_cast<float*>(
      static_cast<char*>(workspace) +
      detail::align_bytes(shape.batch * shape.seq_len * sizeof(int32_t)));
}

// Lanes hold head columns lane, lane + 32, ...: the smallest count that covers HS.
template <typename Launch>
void dispatch_per_lane(int64_t head_size, Launch launch) {
  if (head_size <= 32) {
    launch(std::integral_constant<int, 1>{});
  } else if (head_size <= 64) {
    launch(std::integral_constant<int, 2>{});
  } else {
    launch(std::integral_constant<int, 4>{});
  }
}

dim3 grid_of(const kernels::AttentionShape& shape, int64_t heads) {
  return dim3(static_cast<unsigned>((shape.seq_len + kWarps - 1) / kWarps),
              static_cast<unsigned>(heads), static_cast<unsigned>(shape.batch));
}

}  // namespace

size_t flash_attention_workspace_bytes(const kernels::AttentionShape& shape) {
  return detail::align_bytes(shape.batch * shape.seq_len * sizeof(int32_t)) +
         detail::align_bytes(shape.batch * shape.heads * shape.seq_len * sizeof(float));
}

void launch_flash_attention_forward(const kernels::AttentionShape& shape, const uint16_t* q,
                                    const uint16_t* k, const uint16_t* v, const int32_t* segments,
                                    uint16_t* out, float* lse, void* workspace,
                                    cudaStream_t stream) {
  const FlashDims d = dims_of(shape);
  if (shape.batch == 0 || shape.seq_len == 0) return;
  int32_t* run_start = run_starts_of(workspace);
  launch_attention_run_starts(segments, shape.batch, shape.seq_len, run_start, stream);
  const size_t shared_bytes =
      sizeof(float) * (kTile * (d.head_size + 1) + kTile * d.head_size + kWarps * d.head_size);
  dispatch_per_lane(d.head_size, [&](auto per_lane) {
    flash_forward_kernel<decltype(per_lane)::value>
        <<<grid_of(shape, shape.heads), kWarps * 32, shared_bytes, stream>>>(d, q, k, v, run_start,
                                                                             out, lse);
    CUDA_CHECK_LAUNCH();
  });
}

void launch_flash_attention_backward(const kernels::AttentionShape& shape, const uint16_t* dout,
                                     const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                     const uint16_t* out, const float* lse, const int32_t* segments,
                                     uint16_t* dq, uint16_t* dk, uint16_t* dv, void* workspace,
                                     cudaStream_t stream) {
  const FlashDims d = dims_of(shape);
  if (shape.batch == 0 || shape.seq_len == 0) return;
  int32_t* run_start = run_starts_of(workspace);
  float* delta = delta_of(shape, workspace);  // (B, NH, T)
  launch_attention_run_starts(segments, shape.batch, shape.seq_len, run_start, stream);
  const size_t shared_bytes =
      sizeof(float) * (2 * kTile * (d.head_size + 1) + 2 * kWarps * d.head_size);

  // dQ (and D) first: the dK/dV kernel reads D.
  const FlashBackwardArgs args{dout, q, k, v, out, lse, run_start, dq, dk, dv, delta};
  dispatch_per_lane(d.head_size, [&](auto per_lane) {
    flash_dq_kernel<decltype(per_lane)::value>
        <<<grid_of(shape, shape.heads), kWarps * 32, shared_bytes, stream>>>(d, args);
    CUDA_CHECK_LAUNCH();
  });
  dispatch_per_lane(d.head_size, [&](auto per_lane) {
    flash_dkv_kernel<decltype(per_lane)::value>
        <<<grid_of(shape, shape.kv_heads), kWarps * 32, shared_bytes, stream>>>(d, args);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace steerlm::cuda
