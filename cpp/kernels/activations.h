// Activations forward and backward, elementwise and over rows (softmax, log_softmax). Backward
// starts from the saved output y (ReLU, sigmoid, tanh, the row normalisations) or from the saved
// input x (leaky ReLU, GELU: see backward_from_input). The scalar formulas live in
// core/activation.h, shared with the GEMM epilogue. dx may be dy (in place) in every backward.
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

// Elementwise: all arrays are (n,).
template <typename T> void relu_forward(T* y, const T* x, int64_t n);
template <typename T> void relu_backward(T* dx, const T* dy, const T* y, int64_t n);  // dy*(y>0)
template <typename T> void sigmoid_forward(T* y, const T* x, int64_t n);
template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n);  // dy*y*(1-y)
template <typename T> void tanh_forward(T* y, const T* x, int64_t n);
template <typename T> void tanh_backward(T* dx, const T* dy, const T* y, int64_t n);  // dy*(1-y*y)
template <typename T>
void leaky_relu_forward(T* y, const T* x, int64_t n, double negative_slope);
template <typename T>  // dx = dy if x > 0 else negative_slope * dy
void leaky_relu_backward(T* dx, const T* dy, const T* x, int64_t n, double negative_slope);
template <typename T> void gelu_forward(T* y, const T* x, int64_t n);
template <typename T>  // dx = dy * (Phi(x) + x phi(x))
void gelu_backward(T* dx, const T* dy, const T* x, int64_t n);
template <typename T> void gelu_tanh_forward(T* y, const T* x, int64_t n);
template <typename T> void gelu_tanh_backward(T* dx, const T* dy, const T* x, int64_t n);

// Any elementwise activation by its enum (none copies). `saved` is x or y, as
// backward_from_input(act) says.
template <typename T>
void activation_forward(T* y, const T* x, int64_t n, Activation act, double negative_slope);
template <typename T>
void activation_backward(T* dx, const T* dy, const T* saved, int64_t n, Activation act,
                         double negative_slope);

// Softmax over each row of a (rows, cols) row-major matrix, shifted by the row max for stability.
template <typename T> void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols);
// The same on one thread, for the losses, which also need each row's log-sum-exp,
// max_r + log(sum_r): when not null, max[r] = max_j x_rj and sum[r] = sum_j e^(x_rj - max_r).
template <typename T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t cols, double* max, double* sum);
// dx = y * (dy - sum_j dy_j y_j), row by row: O(cols) from the saved output.
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols);

// y = x - max_r - log(sum_j e^(x_rj - max_r)) over each row of (rows, cols) (sums in double).
template <typename T> void log_softmax_forward(T* y, const T* x, int64_t rows, int64_t cols);
// dx = dy - e^y * sum_j dy_j, row by row, from the saved output.
template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols);

// Either normalisation by its enum (none copies).
template <typename T>
void normalization_forward(T* y, const T* x, int64_t rows, int64_t cols, Normalization norm);
template <typename T>
void normalization_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols,
                            Normalization norm);

}  // namespace lamina
