// Elementwise activations and softmax, forward and backward (backward from the saved output y).
// The scalar formulas live in core/activation.h, shared with the GEMM epilogue.
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

template <typename T> void relu_forward(T* y, const T* x, int64_t n);             // y, x are (n,)
template <typename T> void relu_backward(T* dx, const T* dy, const T* y, int64_t n);  // dx = dy*(y>0)
template <typename T> void sigmoid_forward(T* y, const T* x, int64_t n);
template <typename T> void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n);  // dy*y*(1-y)
template <typename T> void tanh_forward(T* y, const T* x, int64_t n);
template <typename T> void tanh_backward(T* dx, const T* dy, const T* y, int64_t n);  // dy*(1-y*y)

// Softmax over each row of a (rows, cols) row-major matrix, shifted by the row max for stability.
template <typename T> void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols);
// The same on one thread, for the losses, which also need each row's log-sum-exp,
// max_r + log(sum_r): when not null, max[r] = max_j x_rj and sum[r] = sum_j e^(x_rj - max_r).
template <typename T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t cols, double* max, double* sum);
// dx = y * (dy - sum_j dy_j y_j), row by row: O(cols) from the saved output.
template <typename T> void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols);

}  // namespace lamina
