// c = fma(c, scale, shift) over a block of rows, per row or per column: the per-channel affine of
// a GEMM epilogue (an inference batch norm folded into the product before it). One exactly
// rounded fma per value, so any build of it (the vector ones, the baseline's library call) gives
// the same bits as any other fma of the same values. Compiled once per vector ISA
// (scale_shift_avx2.cpp, scale_shift_avx512.cpp, and the baseline in scale_shift.cpp, which
// dispatches on the ISA in use: core/isa.h), as exp_block is.
#pragma once
#include <cmath>
#include <cstdint>

namespace lamina {

// C is (m, n) with row stride ldc. per_row: c(i, j) = fma(c(i, j), scale[i], shift[i]), scale
// and shift (m,); otherwise c(i, j) = fma(c(i, j), scale[j], shift[j]), scale and shift (n,).
// relu: then c = c < 0 ? 0 : c, core/activation.h's relu_scalar (NaN and -0 kept), in the same
// pass.
template <typename T>
void scale_shift_block(T* C, int64_t ldc, int64_t m, int64_t n, const T* scale, const T* shift,
                       bool per_row, bool relu);

void scale_shift_block_generic(float* C, int64_t ldc, int64_t m, int64_t n, const float* scale,
                               const float* shift, bool per_row, bool relu);
void scale_shift_block_generic(double* C, int64_t ldc, int64_t m, int64_t n, const double* scale,
                               const double* shift, bool per_row, bool relu);
void scale_shift_block_avx2(float* C, int64_t ldc, int64_t m, int64_t n, const float* scale,
                            const float* shift, bool per_row, bool relu);
void scale_shift_block_avx2(double* C, int64_t ldc, int64_t m, int64_t n, const double* scale,
                            const double* shift, bool per_row, bool relu);
void scale_shift_block_avx512(float* C, int64_t ldc, int64_t m, int64_t n, const float* scale,
                              const float* shift, bool per_row, bool relu);
void scale_shift_block_avx512(double* C, int64_t ldc, int64_t m, int64_t n, const double* scale,
                              const double* shift, bool per_row, bool relu);

// Internal linkage: every file compiled with wider ISA flags has its own copy (see exp_block.h).
namespace {

// With FMA enabled the compiler turns std::fma into the instruction and vectorizes the loops;
// the baseline calls the C library's fma, which is exact too.
template <typename T, bool Relu>
inline void scale_shift_rows(T* C, int64_t ldc, int64_t m, int64_t n, const T* scale,
                             const T* shift, bool per_row) {
    for (int64_t i = 0; i < m; ++i) {
        T* c = C + i * ldc;
        if (per_row) {
            const T s = scale[i], t = shift[i];
            for (int64_t j = 0; j < n; ++j) {
                const T v = std::fma(c[j], s, t);
                c[j] = Relu && v < T(0) ? T(0) : v;
            }
        } else {
            for (int64_t j = 0; j < n; ++j) {
                const T v = std::fma(c[j], scale[j], shift[j]);
                c[j] = Relu && v < T(0) ? T(0) : v;
            }
        }
    }
}

template <typename T>
inline void scale_shift_loop(T* C, int64_t ldc, int64_t m, int64_t n, const T* scale,
                             const T* shift, bool per_row, bool relu) {
    if (relu) scale_shift_rows<T, true>(C, ldc, m, n, scale, shift, per_row);
    else scale_shift_rows<T, false>(C, ldc, m, n, scale, shift, per_row);
}

}  // namespace
}  // namespace lamina
