// Dense (fully connected) layer: y = act(x @ W.T + b), forward and backward, on the GEMM engine.
// The activation is applied in the GEMM's write-back (any elementwise one: core/activation.h).
#pragma once
#include <cstdint>

#include "gemm/gemm.h"

namespace lamina {

// y = act(x @ W.T + b). With scale and shift (an inference batch norm folded in), each output
// column j becomes y = act(fma(x @ W.T + b, scale[j], shift[j])) in the GEMM's write-back:
// bitwise the product without them, then that fma.
template <typename T>
void dense_forward(T* y,         // y is (M, N) row-major
                   const T* x,   // x is (M, K) row-major
                   const T* W,   // W is (N, K) row-major: one row per output
                   const T* b,   // b is (N,), or nullptr
                   int64_t M, int64_t K, int64_t N, Activation act, double negative_slope,
                   const T* scale = nullptr,   // scale is (N,), or nullptr (then no shift)
                   const T* shift = nullptr);  // shift is (N,) when scale is set

// dx = dy @ W (overwritten), dW += dy.T @ x, db += sum over rows of dy; each is skipped when its
// pointer is null (the first layer's dx, a frozen parameter's gradient). Gradients accumulate, as
// parameter gradients do in PyTorch; with accumulate == false they are overwritten instead (what
// zero_grad then accumulate would give, without a pass over dW to zero it).
template <typename T>
void dense_backward(T* dx,         // dx is (M, K)
                    T* dW,         // dW is (N, K)
                    T* db,         // db is (N,)
                    const T* dy,   // dy is (M, N)
                    const T* x,    // x is (M, K)
                    const T* W,    // W is (N, K)
                    int64_t M, int64_t K, int64_t N, bool accumulate = true);

// db += sum over rows of dy, each column summed top to bottom (a fixed order for any thread count).
template <typename T>
void column_sums(T* db, const T* dy, int64_t M, int64_t N);  // db is (N,), dy is (M, N)

}  // namespace lamina
