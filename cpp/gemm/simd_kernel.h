// The micro-kernel, written once for every vector ISA and dtype: a 6 x NR tile of C held in
// 12 vector accumulators (6 rows x 2 vectors; NR = 2 x lanes: 16 floats with AVX2, 32 with AVX-512).
//   C[m<=6, n<=NR] = beta*C + alpha * A(6 x k) * B(k x NR)  (+ bias, then ReLU)
// A(i, p) = a[i*rsa + p*csa] and B(p, j) = b[p*rsb + j]: packed panels (rsa 1, csa 6, rsb NR) or,
// for products too small to repay packing, the operands themselves (see gemm.cpp).
// Each step of k loads one row of B (2 vectors), broadcasts 6 values of A and issues 12
// independent FMAs: enough chains to cover the FMA latency on two FMA pipes. The accumulators are
// 12 named variables (an array whose address escapes was spilled to the stack on every step).
// Rows of A past m repeat row m-1, so an edge tile never reads outside A; B always has NR
// readable columns (a zero-padded panel, or a full tile of B itself). Extra accumulators are
// simply not stored. (B's loads are never masked: masked loads in this loop cost 30% on the
// 784-30x9-2 training step.)
//
// `S` supplies the vector operations (avx2_traits.h, avx512_traits.h). Included only by the
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
template <bool kEdge, typename S, typename T, typename V = typename S::V, typename Mask = typename S::Mask>
inline void store_row(T* c, V v0, V v1, const Epilogue<T>& ep, Mask mask0, Mask mask1) {
    constexpr int L = S::kLanes;
    auto load = [&](const T* p, Mask mask) { return kEdge ? S::maskload(p, mask) : S::loadu(p); };
    const V alpha = S::set1(ep.alpha);
    v0 = S::mul(alpha, v0);
    v1 = S::mul(alpha, v1);
    if (ep.beta != T(0)) {
        const V beta = S::set1(ep.beta);
        v0 = S::fmadd(beta, load(c, mask0), v0);
        v1 = S::fmadd(beta, load(c + L, mask1), v1);
    }
    if (ep.bias) {
        v0 = S::add(v0, load(ep.bias, mask0));
        v1 = S::add(v1, load(ep.bias + L, mask1));
    }
    if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
        v0 = S::max(S::zero(), v0);
        v1 = S::max(S::zero(), v1);
    }
    if (kEdge) {
        S::maskstore(c, mask0, v0);
        S::maskstore(c + L, mask1, v1);
    } else {
        S::storeu(c, v0);
        S::storeu(c + L, v1);
    }
}

template <typename S, typename T>
inline void gemm_6x2v(int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t rsb,
                      T* C, int64_t ldc, int64_t m, int64_t n, const Epilogue<T>& ep) {
    using V = typename S::V;
    constexpr int L = S::kLanes;
    // Bring the C tile towards L1 while the k loop runs: its write-back would otherwise stall on it.
    for (int64_t i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + n - 1), _MM_HINT_T0);
    }
    const T* a0 = a;
    const T* a1 = a + (m > 1 ? 1 : 0) * rsa;
    const T* a2 = a + (m > 2 ? 2 : m - 1) * rsa;
    const T* a3 = a + (m > 3 ? 3 : m - 1) * rsa;
    const T* a4 = a + (m > 4 ? 4 : m - 1) * rsa;
    const T* a5 = a + (m > 5 ? 5 : m - 1) * rsa;
    const int64_t ahead = 16 * csa;  // a packed A streams from L2: ask for it 16 steps ahead (+3-5%)
    V c00 = S::zero(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    V c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

#pragma GCC unroll 4
    for (int64_t p = 0, o = 0; p < k; ++p, o += csa, b += rsb) {
        _mm_prefetch(reinterpret_cast<const char*>(a0 + o + ahead), _MM_HINT_T0);
        const V b0 = S::loadu(b);
        const V b1 = S::loadu(b + L);
        V x = S::broadcast(a0 + o);
        c00 = S::fmadd(x, b0, c00);
        c01 = S::fmadd(x, b1, c01);
        x = S::broadcast(a1 + o);
        c10 = S::fmadd(x, b0, c10);
        c11 = S::fmadd(x, b1, c11);
        x = S::broadcast(a2 + o);
        c20 = S::fmadd(x, b0, c20);
        c21 = S::fmadd(x, b1, c21);
        x = S::broadcast(a3 + o);
        c30 = S::fmadd(x, b0, c30);
        c31 = S::fmadd(x, b1, c31);
        x = S::broadcast(a4 + o);
        c40 = S::fmadd(x, b0, c40);
        c41 = S::fmadd(x, b1, c41);
        x = S::broadcast(a5 + o);
        c50 = S::fmadd(x, b0, c50);
        c51 = S::fmadd(x, b1, c51);
    }

    if (m == 6 && n == 2 * L) {
        const auto all = S::all();
        store_row<false, S>(C + 0 * ldc, c00, c01, ep, all, all);
        store_row<false, S>(C + 1 * ldc, c10, c11, ep, all, all);
        store_row<false, S>(C + 2 * ldc, c20, c21, ep, all, all);
        store_row<false, S>(C + 3 * ldc, c30, c31, ep, all, all);
        store_row<false, S>(C + 4 * ldc, c40, c41, ep, all, all);
        store_row<false, S>(C + 5 * ldc, c50, c51, ep, all, all);
        return;
    }
    // Edge tile: the first m rows, the first n columns through masks.
    const auto mask0 = S::first_lanes(n), mask1 = S::first_lanes(n - L);
    store_row<true, S>(C + 0 * ldc, c00, c01, ep, mask0, mask1);
    if (m > 1) store_row<true, S>(C + 1 * ldc, c10, c11, ep, mask0, mask1);
    if (m > 2) store_row<true, S>(C + 2 * ldc, c20, c21, ep, mask0, mask1);
    if (m > 3) store_row<true, S>(C + 3 * ldc, c30, c31, ep, mask0, mask1);
    if (m > 4) store_row<true, S>(C + 4 * ldc, c40, c41, ep, mask0, mask1);
    if (m > 5) store_row<true, S>(C + 5 * ldc, c50, c51, ep, mask0, mask1);
}

}  // namespace
}  // namespace lamina
