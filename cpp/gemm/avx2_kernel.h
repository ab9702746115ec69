// The AVX2 + FMA micro-kernel, written once for float32 and float64: a 6 x NR tile of C held in
// 12 ymm accumulators (6 rows x 2 vectors, NR = 16 floats or 8 doubles).
//   C[m<=6, n<=NR] = beta*C + alpha * Ap(6 x k) * Bp(k x NR)  (+ bias, then ReLU)
// Ap: k columns of 6 values (stride 6); Bp: k rows of NR values (stride NR, 32-byte aligned).
// Each step of k loads one row of Bp (2 ymm), broadcasts 6 values of Ap and issues 12 independent
// FMAs: enough chains to cover the FMA latency on two FMA pipes. The accumulators are 12 named
// variables (an array whose address escapes was spilled to the stack on every step).
//
// Included only by the kernel files named by tile and ISA (sgemm_6x16_avx2.cpp, dgemm_6x8_avx2.cpp),
// which are compiled with -mavx2 -mfma and called only when the CPU reports both. Everything here
// has internal linkage, so no AVX2 instruction can reach baseline code through a shared symbol.
#pragma once
#include <immintrin.h>

#include "gemm/kernel.h"

namespace lamina {
namespace {

template <typename T>
struct Avx2;

template <>
struct Avx2<float> {
    using V = __m256;
    static constexpr int kLanes = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V load(const float* p) { return _mm256_load_ps(p); }
    static V loadu(const float* p) { return _mm256_loadu_ps(p); }
    static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
    // Lanes j < k, as a mask for maskload/maskstore.
    static __m256i first_lanes(int64_t k) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V maskload(const float* p, __m256i mask) { return _mm256_maskload_ps(p, mask); }
    static void maskstore(float* p, __m256i mask, V v) { _mm256_maskstore_ps(p, mask, v); }
};

template <>
struct Avx2<double> {
    using V = __m256d;
    static constexpr int kLanes = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V load(const double* p) { return _mm256_load_pd(p); }
    static V loadu(const double* p) { return _mm256_loadu_pd(p); }
    static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
    static __m256i first_lanes(int64_t k) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static V maskload(const double* p, __m256i mask) { return _mm256_maskload_pd(p, mask); }
    static void maskstore(double* p, __m256i mask, V v) { _mm256_maskstore_pd(p, mask, v); }
};

// One row of the write-back: c[0..NR) = act(beta*c + alpha*(v0, v1) + bias). With kEdge only the
// lanes in (mask0, mask1) are read or written (an edge tile's n < NR columns); masked-off lanes
// never touch memory.
template <bool kEdge, typename T, typename V = typename Avx2<T>::V>
inline void store_row(T* c, V v0, V v1, const Epilogue<T>& ep, __m256i mask0, __m256i mask1) {
    using A = Avx2<T>;
    constexpr int L = A::kLanes;
    auto load = [&](const T* p, __m256i mask) { return kEdge ? A::maskload(p, mask) : A::loadu(p); };
    const V alpha = A::set1(ep.alpha);
    v0 = A::mul(alpha, v0);
    v1 = A::mul(alpha, v1);
    if (ep.beta != T(0)) {
        const V beta = A::set1(ep.beta);
        v0 = A::fmadd(beta, load(c, mask0), v0);
        v1 = A::fmadd(beta, load(c + L, mask1), v1);
    }
    if (ep.bias) {
        v0 = A::add(v0, load(ep.bias, mask0));
        v1 = A::add(v1, load(ep.bias + L, mask1));
    }
    if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
        v0 = A::max(A::zero(), v0);
        v1 = A::max(A::zero(), v1);
    }
    if (kEdge) {
        A::maskstore(c, mask0, v0);
        A::maskstore(c + L, mask1, v1);
    } else {
        A::storeu(c, v0);
        A::storeu(c + L, v1);
    }
}

template <typename T>
inline void gemm_6x2v_avx2(int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc, int64_t m,
                           int64_t n, const Epilogue<T>& ep) {
    using A = Avx2<T>;
    using V = typename A::V;
    constexpr int L = A::kLanes, NR = 2 * L;
    // Bring the C tile towards L1 while the k loop runs: its write-back would otherwise stall on it.
    for (int64_t i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + n - 1), _MM_HINT_T0);
    }
    V c00 = A::zero(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    V c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p) {
        // Ap streams from L2 (the Bp micro-panel stays in L1): ask for it 16 steps ahead (+3-5%).
        _mm_prefetch(reinterpret_cast<const char*>(Ap + 96), _MM_HINT_T0);
        const V b0 = A::load(Bp);
        const V b1 = A::load(Bp + L);
        V a = A::broadcast(Ap + 0);
        c00 = A::fmadd(a, b0, c00);
        c01 = A::fmadd(a, b1, c01);
        a = A::broadcast(Ap + 1);
        c10 = A::fmadd(a, b0, c10);
        c11 = A::fmadd(a, b1, c11);
        a = A::broadcast(Ap + 2);
        c20 = A::fmadd(a, b0, c20);
        c21 = A::fmadd(a, b1, c21);
        a = A::broadcast(Ap + 3);
        c30 = A::fmadd(a, b0, c30);
        c31 = A::fmadd(a, b1, c31);
        a = A::broadcast(Ap + 4);
        c40 = A::fmadd(a, b0, c40);
        c41 = A::fmadd(a, b1, c41);
        a = A::broadcast(Ap + 5);
        c50 = A::fmadd(a, b0, c50);
        c51 = A::fmadd(a, b1, c51);
        Ap += 6;
        Bp += NR;
    }

    const __m256i all = _mm256_set1_epi32(-1);
    if (m == 6 && n == NR) {
        store_row<false>(C + 0 * ldc, c00, c01, ep, all, all);
        store_row<false>(C + 1 * ldc, c10, c11, ep, all, all);
        store_row<false>(C + 2 * ldc, c20, c21, ep, all, all);
        store_row<false>(C + 3 * ldc, c30, c31, ep, all, all);
        store_row<false>(C + 4 * ldc, c40, c41, ep, all, all);
        store_row<false>(C + 5 * ldc, c50, c51, ep, all, all);
        return;
    }
    // Edge tile: the first m rows, the first n columns through masks.
    const __m256i mask0 = A::first_lanes(n), mask1 = A::first_lanes(n - L);
    store_row<true>(C + 0 * ldc, c00, c01, ep, mask0, mask1);
    if (m > 1) store_row<true>(C + 1 * ldc, c10, c11, ep, mask0, mask1);
    if (m > 2) store_row<true>(C + 2 * ldc, c20, c21, ep, mask0, mask1);
    if (m > 3) store_row<true>(C + 3 * ldc, c30, c31, ep, mask0, mask1);
    if (m > 4) store_row<true>(C + 4 * ldc, c40, c41, ep, mask0, mask1);
    if (m > 5) store_row<true>(C + 5 * ldc, c50, c51, ep, mask0, mask1);
}

}  // namespace
}  // namespace lamina
