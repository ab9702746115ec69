// float64 micro-kernel for AVX2 + FMA: a 6 x 8 tile of C in 12 ymm accumulators.
//   C[m<=6, n<=8] = beta*C + alpha * Ap(6 x k) * Bp(k x 8)  (+ bias, then ReLU)
// Each step of k broadcasts 6 values of Ap and multiplies two 4-wide rows of Bp: 12 FMAs to
// 2 loads + 6 broadcasts, enough independent chains to hide the FMA latency on two FMA ports.
// Compiled with -mavx2 -mfma; called only when the CPU reports both. No std templates here, so no
// AVX2 code can leak into baseline code through a shared inline function.
#include <immintrin.h>

#include "gemm/kernel.h"

namespace lamina {

namespace {

// Write back one 6 x 8 tile of accumulators to C (row stride ldc), applying the epilogue.
inline void store_tile(double* C, int64_t ldc, const __m256d (&acc)[6][2], const Epilogue<double>& ep,
                       const double* bias) {
    const __m256d alpha = _mm256_set1_pd(ep.alpha);
    const __m256d beta = _mm256_set1_pd(ep.beta);
    const __m256d zero = _mm256_setzero_pd();
    __m256d b0 = zero, b1 = zero;
    if (bias) {
        b0 = _mm256_loadu_pd(bias);
        b1 = _mm256_loadu_pd(bias + 4);
    }
    for (int i = 0; i < 6; ++i) {
        double* c = C + i * ldc;
        __m256d v0 = _mm256_mul_pd(alpha, acc[i][0]);
        __m256d v1 = _mm256_mul_pd(alpha, acc[i][1]);
        if (ep.beta != 0.0) {
            v0 = _mm256_fmadd_pd(beta, _mm256_loadu_pd(c), v0);
            v1 = _mm256_fmadd_pd(beta, _mm256_loadu_pd(c + 4), v1);
        }
        if (bias) {
            v0 = _mm256_add_pd(v0, b0);
            v1 = _mm256_add_pd(v1, b1);
        }
        if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
            v0 = _mm256_max_pd(zero, v0);
            v1 = _mm256_max_pd(zero, v1);
        }
        _mm256_storeu_pd(c, v0);
        _mm256_storeu_pd(c + 4, v1);
    }
}

}  // namespace

void dgemm_6x8_avx2(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                     int64_t m, int64_t n, const Epilogue<double>& ep) {
    __m256d acc[6][2];
    for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        const __m256d b0 = _mm256_load_pd(Bp);
        const __m256d b1 = _mm256_load_pd(Bp + 4);
        for (int i = 0; i < 6; ++i) {
            const __m256d a = _mm256_broadcast_sd(Ap + i);
            acc[i][0] = _mm256_fmadd_pd(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(a, b1, acc[i][1]);
        }
        Ap += 6;
        Bp += 8;
    }

    if (m == 6 && n == 8) {
        store_tile(C, ldc, acc, ep, ep.bias);
        return;
    }
    // Edge tile: run the same write-back on a full-size copy, then copy the valid m x n part.
    alignas(32) double tile[6 * 8];
    alignas(32) double bias[8];
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) tile[i * 8 + j] = ep.beta != 0.0 ? C[i * ldc + j] : 0.0;
    for (int64_t j = 0; j < 8; ++j) bias[j] = (ep.bias && j < n) ? ep.bias[j] : 0.0;
    store_tile(tile, 8, acc, ep, ep.bias ? bias : nullptr);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) C[i * ldc + j] = tile[i * 8 + j];
}

}  // namespace lamina
