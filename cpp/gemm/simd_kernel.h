// The micro-kernel, written once for every vector ISA and dtype: a tile of C held in 12 vector
// accumulators (NR = 2 x lanes: 16 floats with AVX2, 32 with AVX-512), in one of three shapes:
//   6 rows x 2 vectors   the main tile, C[m<=6, n<=NR]
//   6 rows x 1 vector    a tile at most one vector wide: no FMAs for lanes never stored
//   12 rows x 1 vector   the same with twice the rows, for narrow products with A in place
//                        (a 32 x 6 layer output is 3 tiles instead of 6)
//   C = beta*C + alpha * A(m x k) * B(k x n)  (+ bias, then ReLU)
// A(i, p) = a[i*rsa + p*csa] and B(p, j) = b[p*rsb + j]: packed panels (rsa 1, csa 6, rsb NR) or,
// for products too small to repay packing, the operands themselves (see gemm.cpp).
// Each step of k loads one row of B, broadcasts a value of A per row and issues up to 12
// independent FMAs: enough chains to cover the FMA latency on two FMA pipes. The accumulators are
// 12 named variables (an array whose address escapes was spilled to the stack on every step).
// Every shape adds a lane's products in the same order, so the shape never changes a result.
// Rows of A past m repeat row m-1, so an edge tile never reads outside A; B always has NR (or,
// for a one-vector tile, lanes) readable columns (a zero-padded panel, or a full tile of B
// itself). Extra accumulators are simply not stored. (B's loads are never masked: masked loads in
// this loop cost 30% on the 784-30x9-2 training step.)
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

// One row of the write-back: c[0..NR) = act(beta*c + alpha*(v0, v1) + bias), or c[0..lanes)
// from v0 alone when kV is 1. With kEdge only the lanes in (mask0, mask1) are read or written (an
// edge tile's n columns); masked-off lanes never touch memory.
template <bool kEdge, int kV, typename S, typename T, typename V = typename S::V,
          typename Mask = typename S::Mask>
inline void store_row(T* c, V v0, V v1, const Epilogue<T>& ep, Mask mask0, Mask mask1) {
    constexpr int L = S::kLanes;
    constexpr bool two = kV == 2;
    auto load = [&](const T* p, Mask mask) { return kEdge ? S::maskload(p, mask) : S::loadu(p); };
    const V alpha = S::set1(ep.alpha);
    v0 = S::mul(alpha, v0);
    if (two) v1 = S::mul(alpha, v1);
    if (ep.beta != T(0)) {
        const V beta = S::set1(ep.beta);
        v0 = S::fmadd(beta, load(c, mask0), v0);
        if (two) v1 = S::fmadd(beta, load(c + L, mask1), v1);
    }
    if (ep.bias) {
        v0 = S::add(v0, load(ep.bias, mask0));
        if (two) v1 = S::add(v1, load(ep.bias + L, mask1));
    }
    if (ep.relu) {  // max(0, v) with 0 first: a NaN in v propagates, as in NumPy
        v0 = S::max(S::zero(), v0);
        if (two) v1 = S::max(S::zero(), v1);
    }
    if (kEdge) {
        S::maskstore(c, mask0, v0);
        if (two) S::maskstore(c + L, mask1, v1);
    } else {
        S::storeu(c, v0);
        if (two) S::storeu(c + L, v1);
    }
}

// A kRows x kV-vector tile (6 x 2, 6 x 1 or 12 x 1). Accumulator cI0 holds row I's first vector;
// cI1 holds its second vector (6 x 2) or row 6 + I (12 x 1).
template <int kRows, int kV, typename S, typename T>
inline void tile(int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t rsb, T* C,
                 int64_t ldc, int64_t m, int64_t n, const Epilogue<T>& ep) {
    using V = typename S::V;
    constexpr int L = S::kLanes;
    constexpr bool two = kV == 2, tall = kRows == 12;
    // Bring the C tile towards L1 while the k loop runs: its write-back would otherwise stall on it.
    for (int64_t i = 0; i < m; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + n - 1), _MM_HINT_T0);
    }
    auto row = [&](int64_t i) { return a + (i < m ? i : m - 1) * rsa; };
    const T *a0 = row(0), *a1 = row(1), *a2 = row(2), *a3 = row(3), *a4 = row(4), *a5 = row(5);
    const T *a6 = row(6), *a7 = row(7), *a8 = row(8), *a9 = row(9), *a10 = row(10), *a11 = row(11);
    const int64_t ahead = 16 * csa;  // a packed A streams from L2: ask for it 16 steps ahead (+3-5%)
    V c00 = S::zero(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    V c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;

#pragma GCC unroll 4
    for (int64_t p = 0, o = 0; p < k; ++p, o += csa, b += rsb) {
        _mm_prefetch(reinterpret_cast<const char*>(a0 + o + ahead), _MM_HINT_T0);
        const V b0 = S::loadu(b);
        const V b1 = two ? S::loadu(b + L) : b0;
        // Row I times the row of B, into cI0 (and cI1 for a second vector).
        auto step = [&](const T* ai, V& ci0, V& ci1) {
            const V x = S::broadcast(ai + o);
            ci0 = S::fmadd(x, b0, ci0);
            if (two) ci1 = S::fmadd(x, b1, ci1);
        };
        step(a0, c00, c01);
        step(a1, c10, c11);
        step(a2, c20, c21);
        step(a3, c30, c31);
        step(a4, c40, c41);
        step(a5, c50, c51);
        if (tall) {  // rows 6..11 into the second set of accumulators
            V unused;
            step(a6, c01, unused);
            step(a7, c11, unused);
            step(a8, c21, unused);
            step(a9, c31, unused);
            step(a10, c41, unused);
            step(a11, c51, unused);
        }
    }

    if (m == kRows && n == kV * L) {
        const auto all = S::all();
        store_row<false, kV, S>(C + 0 * ldc, c00, c01, ep, all, all);
        store_row<false, kV, S>(C + 1 * ldc, c10, c11, ep, all, all);
        store_row<false, kV, S>(C + 2 * ldc, c20, c21, ep, all, all);
        store_row<false, kV, S>(C + 3 * ldc, c30, c31, ep, all, all);
        store_row<false, kV, S>(C + 4 * ldc, c40, c41, ep, all, all);
        store_row<false, kV, S>(C + 5 * ldc, c50, c51, ep, all, all);
        if (tall) {
            store_row<false, 1, S>(C + 6 * ldc, c01, c01, ep, all, all);
            store_row<false, 1, S>(C + 7 * ldc, c11, c11, ep, all, all);
            store_row<false, 1, S>(C + 8 * ldc, c21, c21, ep, all, all);
            store_row<false, 1, S>(C + 9 * ldc, c31, c31, ep, all, all);
            store_row<false, 1, S>(C + 10 * ldc, c41, c41, ep, all, all);
            store_row<false, 1, S>(C + 11 * ldc, c51, c51, ep, all, all);
        }
        return;
    }
    // Edge tile: the first m rows, the first n columns through masks.
    const auto mask0 = S::first_lanes(n), mask1 = S::first_lanes(n - L);
    store_row<true, kV, S>(C + 0 * ldc, c00, c01, ep, mask0, mask1);
    if (m > 1) store_row<true, kV, S>(C + 1 * ldc, c10, c11, ep, mask0, mask1);
    if (m > 2) store_row<true, kV, S>(C + 2 * ldc, c20, c21, ep, mask0, mask1);
    if (m > 3) store_row<true, kV, S>(C + 3 * ldc, c30, c31, ep, mask0, mask1);
    if (m > 4) store_row<true, kV, S>(C + 4 * ldc, c40, c41, ep, mask0, mask1);
    if (m > 5) store_row<true, kV, S>(C + 5 * ldc, c50, c51, ep, mask0, mask1);
    if (tall) {
        if (m > 6) store_row<true, 1, S>(C + 6 * ldc, c01, c01, ep, mask0, mask0);
        if (m > 7) store_row<true, 1, S>(C + 7 * ldc, c11, c11, ep, mask0, mask0);
        if (m > 8) store_row<true, 1, S>(C + 8 * ldc, c21, c21, ep, mask0, mask0);
        if (m > 9) store_row<true, 1, S>(C + 9 * ldc, c31, c31, ep, mask0, mask0);
        if (m > 10) store_row<true, 1, S>(C + 10 * ldc, c41, c41, ep, mask0, mask0);
        if (m > 11) store_row<true, 1, S>(C + 11 * ldc, c51, c51, ep, mask0, mask0);
    }
}

// The kernel: m <= 6 rows, or up to 12 when n <= lanes (the engine asks for 12 only with A in
// place, since a packed panel holds 6 rows).
template <typename S, typename T>
inline void gemm_6x2v(int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t rsb,
                      T* C, int64_t ldc, int64_t m, int64_t n, const Epilogue<T>& ep) {
    if (n > S::kLanes)
        tile<6, 2, S>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
    else if (m > 6)
        tile<12, 1, S>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
    else
        tile<6, 1, S>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

}  // namespace
}  // namespace lamina
