// The one matrix-multiply entry point of lamina, serving every dense product forward and backward:
//   C = act(alpha * A @ B + beta * C + bias)
// act is any elementwise activation (core/activation.h; negative_slope is leaky ReLU's).
// A and B are read through element strides, so transposed and non-contiguous operands cost nothing:
// the packing routines absorb the layout. See gemm.cpp for the five BLIS loops.
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

template <typename T>
void gemm(T* C, int64_t ldc,                      // C is (M, N), row stride ldc, column stride 1
          const T* A, int64_t rsa, int64_t csa,   // A is (M, K): A(i, p) = A[i*rsa + p*csa]
          const T* B, int64_t rsb, int64_t csb,   // B is (K, N): B(p, j) = B[p*rsb + j*csb]
          const T* bias,                          // bias is (N,) added to every row, or nullptr
          int64_t M, int64_t N, int64_t K,
          T alpha, T beta,                        // beta == 0: C is written, never read
          Activation act, T negative_slope);

// Which operands the micro-kernel reads packed: "auto" (packing only where it pays; the default),
// "packed" (always both) or "in_place" (every operand the kernel can read in place: A always,
// B when its rows are contiguous). Results are bitwise the same in every mode; tests use this to
// run each shape through both code paths.
const char* gemm_packing();
bool set_gemm_packing(const char* mode);  // false if the mode is unknown

}  // namespace lamina
