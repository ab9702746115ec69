// Elementwise activations and softmax, forward and backward (backward from the saved output y).
// The scalar formulas are inline here so the GEMM epilogue applies exactly the same ones.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace lamina {

// e^x for x <= 0, the shifted arguments of a softmax; written without branches or calls so that a
// row's loop vectorizes (glibc's expf, one call per element, was 80% of a 32 x 4 cross-entropy).
// x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so n ln2 is exact), e^r by Cephes' degree-6
// polynomial (0.99 ulp at worst, checked against every float in [-87.33, 0]), then 2^n put into the
// exponent bits. Below -87.33 (a denormal or zero e^x) it returns 0; NaN stays NaN. double uses
// std::exp.
inline float exp_nonpositive(float x) {
    const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round(x / ln2), |x| < 2^22
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * r * r + r + 1.0f;
    const float n_clamped = n >= -127.0f ? (n <= 127.0f ? n : 127.0f) : -127.0f;  // NaN: -127
    const int32_t bits = (static_cast<int32_t>(n_clamped) + 127) << 23;
    float two_to_n;
    std::memcpy(&two_to_n, &bits, sizeof two_to_n);
    return x < -87.33654f ? 0.0f : e * two_to_n;
}
inline double exp_nonpositive(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid_scalar(T x) { return T(1) / (T(1) + std::exp(-x)); }

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
