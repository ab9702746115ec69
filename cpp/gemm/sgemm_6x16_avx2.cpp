// float32 micro-kernel for AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators.
//   C[m<=6, n<=16] = beta*C + alpha * Ap(6 x k) * Bp(k x 16)  (+ bias, then ReLU)
// Each step of k broadcasts 6 values of Ap and multiplies two 8-wide rows of Bp: 12 FMAs to
// 2 loads + 6 broadcasts, enough independent chains to hide the FMA latency on two FMA ports.
// Compiled with -mavx2 -mfma; called only when the CPU reports both. No std templates here, so no
// AVX2 code can leak into baseline code through a shared inline function.
#include <immintrin.h>

#include "gemm/kernel.h"

namespace lamina {

namespace {

// Write back one 6 x 16 tile of accumulators to C (row stride ldc), applying the epilogue.
inline void store_tile(float* C, int64_t ldc, const __m256 (&acc)[6][2], const Epilogue<float>& ep,
                       const float* bias) {
    const __m256 alpha = _mm256_set1_ps(ep.alpha);
    const __m256 beta = _mm256_set1_ps(ep.beta);
    const __m256 zero = _mm256_setzero_ps();
    __m256 b0 = zero, b1 = zero;
    if (bias) {
        b0 = _mm256_loadu_ps(bias);
        b1 = _mm256_loadu_ps(bias + 8);
    }
    for (int i = 0; i < 6; ++i) {
        float* c = C + i * ldc;
        __m256 v0 = _mm256_mul_ps(alpha, acc[i][0]);
        __m256 v1 = _mm256_mul_ps(alpha, acc[i][1]);
        if (ep.beta != 0.0f) {
            v0 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(c), v0);
            v1 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(c + 8), v1);
        }
        if (bias) {
            v0 = _mm256_add_ps(v0, b0);
            v1 = _mm256_add_ps(v1, b1);
        }
        if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
            v0 = _mm256_max_ps(zero, v0);
            v1 = _mm256_max_ps(zero, v1);
        }
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
    }
}

}  // namespace

void sgemm_6x16_avx2(int64_t k, const float* Ap, const float* Bp, float* C, int64_t ldc,
                     int64_t m, int64_t n, const Epilogue<float>& ep) {
    __m256 acc[6][2];
    for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_load_ps(Bp);
        const __m256 b1 = _mm256_load_ps(Bp + 8);
        for (int i = 0; i < 6; ++i) {
            const __m256 a = _mm256_broadcast_ss(Ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
        Ap += 6;
        Bp += 16;
    }

    if (m == 6 && n == 16) {
        store_tile(C, ldc, acc, ep, ep.bias);
        return;
    }
    // Edge tile: run the same write-back on a full-size copy, then copy the valid m x n part.
    alignas(32) float tile[6 * 16];
    alignas(32) float bias[16];
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) tile[i * 16 + j] = ep.beta != 0.0f ? C[i * ldc + j] : 0.0f;
    for (int64_t j = 0; j < 16; ++j) bias[j] = (ep.bias && j < n) ? ep.bias[j] : 0.0f;
    store_tile(tile, 16, acc, ep, ep.bias ? bias : nullptr);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) C[i * ldc + j] = tile[i * 16 + j];
}

}  // namespace lamina
