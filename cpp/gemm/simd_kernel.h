// The micro-kernel, written once for every vector ISA and dtype: a 6 x NR tile of C held in
// 12 vector accumulators (6 rows x 2 vectors; NR = 2 x lanes: 16 floats with AVX2, 32 with AVX-512).
//   C[m<=6, n<=NR] = beta*C + alpha * Ap(6 x k) * Bp(k x NR)  (+ bias, then ReLU)
// Ap: k columns of 6 values (stride 6); Bp: k rows of NR values (stride NR, 64-byte aligned).
// Each step of k loads one row of Bp (2 vectors), broadcasts 6 values of Ap and issues 12
// independent FMAs: enough chains to cover the FMA latency on two FMA pipes. The accumulators are
// 12 named variables (an array whose address escapes was spilled to the stack on every step).
//
// `A` supplies the vector operations (avx2_traits.h, avx512_traits.h). Included only by the
// kernel files named by tile and ISA, each compiled with its ISA's flags and called only when the
// CPU reports that ISA; everything here has internal linkage, so no wide instruction can reach
// baseline code through a shared symbol.
#pragma once
#include <immintrin.h>

#include "gemm/kernel.h"

namespace lamina {
namespace {

// One row of the write-back: c[0..NR) = act(beta*c + alpha*(v0, v1) + bias). With kEdge only the
// lanes in (mask0, mask1) are read or written (an edge tile's n < NR columns); masked-off lanes
// never touch memory.
template <bool kEdge, typename A, typename T, typename V = typename A::V, typename Mask = typename A::Mask>
inline void store_row(T* c, V v0, V v1, const Epilogue<T>& ep, Mask mask0, Mask mask1) {
    constexpr int L = A::kLanes;
    auto load = [&](const T* p, Mask mask) { return kEdge ? A::maskload(p, mask) : A::loadu(p); };
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

template <typename A, typename T>
inline void gemm_6x2v(int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc, int64_t m, int64_t n,
                      const Epilogue<T>& ep) {
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

    const auto all = A::all();
    if (m == 6 && n == NR) {
        store_row<false, A>(C + 0 * ldc, c00, c01, ep, all, all);
        store_row<false, A>(C + 1 * ldc, c10, c11, ep, all, all);
        store_row<false, A>(C + 2 * ldc, c20, c21, ep, all, all);
        store_row<false, A>(C + 3 * ldc, c30, c31, ep, all, all);
        store_row<false, A>(C + 4 * ldc, c40, c41, ep, all, all);
        store_row<false, A>(C + 5 * ldc, c50, c51, ep, all, all);
        return;
    }
    // Edge tile: the first m rows, the first n columns through masks.
    const auto mask0 = A::first_lanes(n), mask1 = A::first_lanes(n - L);
    store_row<true, A>(C + 0 * ldc, c00, c01, ep, mask0, mask1);
    if (m > 1) store_row<true, A>(C + 1 * ldc, c10, c11, ep, mask0, mask1);
    if (m > 2) store_row<true, A>(C + 2 * ldc, c20, c21, ep, mask0, mask1);
    if (m > 3) store_row<true, A>(C + 3 * ldc, c30, c31, ep, mask0, mask1);
    if (m > 4) store_row<true, A>(C + 4 * ldc, c40, c41, ep, mask0, mask1);
    if (m > 5) store_row<true, A>(C + 5 * ldc, c50, c51, ep, mask0, mask1);
}

}  // namespace
}  // namespace lamina
