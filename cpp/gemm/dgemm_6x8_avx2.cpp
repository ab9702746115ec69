// double64 micro-kernel for AVX2 + FMA: a 6 x 8 tile of C in 12 ymm accumulators.
//   C[m<=6, n<=8] = beta*C + alpha * Ap(6 x k) * Bp(k x 8)  (+ bias, then ReLU)
// Ap: k columns of 6 values (stride 6); Bp: k rows of 8 values (stride 8, 32-byte aligned).
// Each step of k loads one row of Bp (2 ymm), broadcasts 6 values of Ap and issues 12 independent
// FMAs: enough chains to cover the FMA latency on two FMA pipes. The accumulators are 12 named
// variables (not an array whose address escapes) so that they stay in registers.
// Compiled with -mavx2 -mfma and called only when the CPU reports both; no std templates here, so no
// AVX2 code can leak into baseline code through a shared inline function.
#include <immintrin.h>

#include "gemm/kernel.h"

namespace lamina {

namespace {

// Lanes j < k of a vector of 4 doubles, as a mask for maskload/maskstore.
inline __m256i first_lanes(int64_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}

// One row of the write-back: c[0..8) = act(beta*c + alpha*(v0, v1) + bias). With kEdge, only the
// lanes in (mask0, mask1) are read or written (an edge tile's n < 8 columns); masked-off lanes
// never touch memory.
template <bool kEdge>
inline void store_row(double* c, __m256d v0, __m256d v1, const Epilogue<double>& ep, __m256i mask0,
                      __m256i mask1) {
    auto load = [&](const double* p, __m256i mask) {
        return kEdge ? _mm256_maskload_pd(p, mask) : _mm256_loadu_pd(p);
    };
    const __m256d alpha = _mm256_set1_pd(ep.alpha);
    v0 = _mm256_mul_pd(alpha, v0);
    v1 = _mm256_mul_pd(alpha, v1);
    if (ep.beta != 0.0) {
        const __m256d beta = _mm256_set1_pd(ep.beta);
        v0 = _mm256_fmadd_pd(beta, load(c, mask0), v0);
        v1 = _mm256_fmadd_pd(beta, load(c + 4, mask1), v1);
    }
    if (ep.bias) {
        v0 = _mm256_add_pd(v0, load(ep.bias, mask0));
        v1 = _mm256_add_pd(v1, load(ep.bias + 4, mask1));
    }
    if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
        v0 = _mm256_max_pd(_mm256_setzero_pd(), v0);
        v1 = _mm256_max_pd(_mm256_setzero_pd(), v1);
    }
    if (kEdge) {
        _mm256_maskstore_pd(c, mask0, v0);
        _mm256_maskstore_pd(c + 4, mask1, v1);
    } else {
        _mm256_storeu_pd(c, v0);
        _mm256_storeu_pd(c + 4, v1);
    }
}

}  // namespace

void dgemm_6x8_avx2(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                     int64_t m, int64_t n, const Epilogue<double>& ep) {
    // Bring the C tile towards L1 while the k loop runs: its write-back would otherwise stall on it.
    for (int64_t i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + n - 1), _MM_HINT_T0);
    }
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        // Ap streams from L2 (the Bp micro-panel stays in L1): ask for it 16 steps ahead (+3-5%).
        _mm_prefetch(reinterpret_cast<const char*>(Ap + 96), _MM_HINT_T0);
        const __m256d b0 = _mm256_load_pd(Bp);
        const __m256d b1 = _mm256_load_pd(Bp + 4);
        __m256d a = _mm256_broadcast_sd(Ap + 0);
        c00 = _mm256_fmadd_pd(a, b0, c00);
        c01 = _mm256_fmadd_pd(a, b1, c01);
        a = _mm256_broadcast_sd(Ap + 1);
        c10 = _mm256_fmadd_pd(a, b0, c10);
        c11 = _mm256_fmadd_pd(a, b1, c11);
        a = _mm256_broadcast_sd(Ap + 2);
        c20 = _mm256_fmadd_pd(a, b0, c20);
        c21 = _mm256_fmadd_pd(a, b1, c21);
        a = _mm256_broadcast_sd(Ap + 3);
        c30 = _mm256_fmadd_pd(a, b0, c30);
        c31 = _mm256_fmadd_pd(a, b1, c31);
        a = _mm256_broadcast_sd(Ap + 4);
        c40 = _mm256_fmadd_pd(a, b0, c40);
        c41 = _mm256_fmadd_pd(a, b1, c41);
        a = _mm256_broadcast_sd(Ap + 5);
        c50 = _mm256_fmadd_pd(a, b0, c50);
        c51 = _mm256_fmadd_pd(a, b1, c51);
        Ap += 6;
        Bp += 8;
    }

    const __m256i all = _mm256_set1_epi32(-1);
    if (m == 6 && n == 8) {
        store_row<false>(C + 0 * ldc, c00, c01, ep, all, all);
        store_row<false>(C + 1 * ldc, c10, c11, ep, all, all);
        store_row<false>(C + 2 * ldc, c20, c21, ep, all, all);
        store_row<false>(C + 3 * ldc, c30, c31, ep, all, all);
        store_row<false>(C + 4 * ldc, c40, c41, ep, all, all);
        store_row<false>(C + 5 * ldc, c50, c51, ep, all, all);
        return;
    }
    // Edge tile: the first m rows, the first n columns through masks.
    const __m256i mask0 = first_lanes(n), mask1 = first_lanes(n - 4);
    store_row<true>(C + 0 * ldc, c00, c01, ep, mask0, mask1);
    if (m > 1) store_row<true>(C + 1 * ldc, c10, c11, ep, mask0, mask1);
    if (m > 2) store_row<true>(C + 2 * ldc, c20, c21, ep, mask0, mask1);
    if (m > 3) store_row<true>(C + 3 * ldc, c30, c31, ep, mask0, mask1);
    if (m > 4) store_row<true>(C + 4 * ldc, c40, c41, ep, mask0, mask1);
    if (m > 5) store_row<true>(C + 5 * ldc, c50, c51, ep, mask0, mask1);
}

}  // namespace lamina
