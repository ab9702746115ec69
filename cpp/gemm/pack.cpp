// Packing routines. Two layouts need a transpose on the way in: A stored row-major (x in
// x @ W.T, every panel element comes from a different row) and B whose columns are contiguous
// (W.T). For float32 those use 4 x 4 SSE transposes (SSE2 is part of the x86-64 baseline, so no
// dispatch is needed); everything else is a plain copy loop with compile-time panel widths that the
// compiler vectorizes. Profiling showed scalar packing costing as many instructions as the
// micro-kernel on (64, 784, 30).
// An edge panel (m < MR or n < NR) is zeroed whole first and then only its m rows or n columns
// are written: one memset instead of a scalar store per padding element (on a 32 x 6 B panel with
// NR = 32 the padding was 80% of the stores).
#include "gemm/pack.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#define LAMINA_PACK_SSE 1
#endif

namespace lamina {

namespace {

// Ap[p*MR + i] = A(i, p): the generic form, any strides.
template <int MR, typename T>
void pack_a_strided(T* Ap, const T* A, int64_t rsa, int64_t csa, int64_t m, int64_t k) {
    for (int64_t p = 0; p < k; ++p) {
        T* dst = Ap + p * MR;
        for (int64_t i = 0; i < m; ++i) dst[i] = A[i * rsa + p * csa];
    }
}

// Bp[p*NR + j] = B(p, j): the generic form, any strides.
template <int NR, typename T>
void pack_b_strided(T* Bp, const T* B, int64_t rsb, int64_t csb, int64_t k, int64_t n) {
    if (csb == 1) {
        // Rows of B contiguous: n < NR values per row (the edge panel of an in-place B). A loop,
        // not memcpy: a library call per row of 4 to 8 values was 11% of the 8-6-6-4 step.
        for (int64_t p = 0; p < k; ++p)
            for (int64_t j = 0; j < n; ++j) Bp[p * NR + j] = B[p * rsb + j];
        return;
    }
    for (int64_t p = 0; p < k; ++p) {
        T* dst = Bp + p * NR;
        for (int64_t j = 0; j < n; ++j) dst[j] = B[p * rsb + j * csb];
    }
}

#ifdef LAMINA_PACK_SSE
// Transposes the 4 x 4 block src[r*ld + c] (r, c < 4) into dst[c*ld_dst + r].
inline void transpose4(float* dst, int64_t ld_dst, const float* src, int64_t ld) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ld);
    __m128 r2 = _mm_loadu_ps(src + 2 * ld), r3 = _mm_loadu_ps(src + 3 * ld);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + ld_dst, r1);
    _mm_storeu_ps(dst + 2 * ld_dst, r2);
    _mm_storeu_ps(dst + 3 * ld_dst, r3);
}

// A row-major (csa == 1): rows of A become columns of the panel. Groups of 4 rows go through
// 4 x 4 transposes; a leftover pair is interleaved, single rows and padding are written directly.
template <int MR>
void pack_a_rows_f32(float* Ap, const float* A, int64_t lda, int64_t m, int64_t k) {
    const int64_t m4 = m / 4 * 4;
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
        float* dst = Ap + p * MR;
        for (int64_t g = 0; g < m4; g += 4) transpose4(dst + g, MR, A + g * lda + p, lda);
        int64_t i = m4;
        if (i + 2 <= m) {
            const __m128 x = _mm_loadu_ps(A + i * lda + p), y = _mm_loadu_ps(A + (i + 1) * lda + p);
            const __m128 lo = _mm_unpacklo_ps(x, y), hi = _mm_unpackhi_ps(x, y);  // x0 y0 x1 y1 | x2 y2 x3 y3
            _mm_storel_pi(reinterpret_cast<__m64*>(dst + i), lo);
            _mm_storeh_pi(reinterpret_cast<__m64*>(dst + MR + i), lo);
            _mm_storel_pi(reinterpret_cast<__m64*>(dst + 2 * MR + i), hi);
            _mm_storeh_pi(reinterpret_cast<__m64*>(dst + 3 * MR + i), hi);
            i += 2;
        }
        for (; i < m; ++i)
            for (int q = 0; q < 4; ++q) dst[q * MR + i] = A[i * lda + p + q];
    }
    for (; p < k; ++p)
        for (int64_t i = 0; i < m; ++i) Ap[p * MR + i] = A[i * lda + p];
}

// B with contiguous columns (rsb == 1, B(p, j) = B[j*csb + p], e.g. W.T): columns of B become
// rows of the panel, groups of 4 through 4 x 4 transposes, the rest directly, padding zeroed.
template <int NR>
void pack_b_cols_f32(float* Bp, const float* B, int64_t csb, int64_t n, int64_t k) {
    const int64_t n4 = n / 4 * 4;
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
        float* dst = Bp + p * NR;
        for (int64_t j = 0; j < n4; j += 4) transpose4(dst + j, NR, B + j * csb + p, csb);
        for (int64_t j = n4; j < n; ++j)
            for (int q = 0; q < 4; ++q) dst[q * NR + j] = B[j * csb + p + q];
    }
    for (; p < k; ++p)
        for (int64_t j = 0; j < n; ++j) Bp[p * NR + j] = B[j * csb + p];
}
#endif

template <int MR, typename T>
void pack_a(T* Ap, const T* A, int64_t rsa, int64_t csa, int64_t m, int64_t k) {
#ifdef LAMINA_PACK_SSE
    if constexpr (sizeof(T) == 4) {
        if (csa == 1) return pack_a_rows_f32<MR>(Ap, A, rsa, m, k);
    }
#endif
    if (rsa == 1 && m == MR) {  // A(:, p) contiguous: a straight copy of MR values per p
        for (int64_t p = 0; p < k; ++p)
            for (int i = 0; i < MR; ++i) Ap[p * MR + i] = A[p * csa + i];
        return;
    }
    pack_a_strided<MR>(Ap, A, rsa, csa, m, k);
}

template <int NR, typename T>
void pack_b(T* Bp, const T* B, int64_t rsb, int64_t csb, int64_t k, int64_t n) {
#ifdef LAMINA_PACK_SSE
    if constexpr (sizeof(T) == 4) {
        if (rsb == 1 && csb != 1) return pack_b_cols_f32<NR>(Bp, B, csb, n, k);
    }
#endif
    if (csb == 1 && n == NR) {  // B(p, :) contiguous: a straight copy of NR values per p
        for (int64_t p = 0; p < k; ++p)
            for (int j = 0; j < NR; ++j) Bp[p * NR + j] = B[p * rsb + j];
        return;
    }
    pack_b_strided<NR>(Bp, B, rsb, csb, k, n);
}

}  // namespace

template <typename T>
void pack_a_panel(T* Ap, const T* A, int64_t rsa, int64_t csa, int64_t m, int64_t k, int MR) {
    if (m < MR) std::memset(Ap, 0, sizeof(T) * k * MR);
    switch (MR) {
        case 6: return pack_a<6>(Ap, A, rsa, csa, m, k);
        default:
            for (int64_t p = 0; p < k; ++p)
                for (int64_t i = 0; i < m; ++i) Ap[p * MR + i] = A[i * rsa + p * csa];
    }
}

template <typename T>
void pack_b_panel(T* Bp, const T* B, int64_t rsb, int64_t csb, int64_t k, int64_t n, int NR) {
    if (n < NR) std::memset(Bp, 0, sizeof(T) * k * NR);
    switch (NR) {
        case 4: return pack_b<4>(Bp, B, rsb, csb, k, n);
        case 8: return pack_b<8>(Bp, B, rsb, csb, k, n);
        case 16: return pack_b<16>(Bp, B, rsb, csb, k, n);
        case 32: return pack_b<32>(Bp, B, rsb, csb, k, n);
        default:
            for (int64_t p = 0; p < k; ++p)
                for (int64_t j = 0; j < n; ++j) Bp[p * NR + j] = B[p * rsb + j * csb];
    }
}

template void pack_a_panel<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_a_panel<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_b_panel<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_b_panel<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t, int);

}  // namespace lamina
