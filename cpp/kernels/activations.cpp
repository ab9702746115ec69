// Activations forward and backward. Elementwise loops are split among threads only when long
// enough to pay for it; every element's result is independent of the split.
#include "kernels/activations.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/parallel.h"
#include "vec/exp_block.h"

namespace lamina {

namespace {
constexpr double kMinWorkPerThread = 1 << 15;  // element operations
constexpr double kExpCost = 8;                 // an exp or tanh, in element operations
}  // namespace

template <typename T>
void relu_forward(T* y, const T* x, int64_t n) {
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN propagates
    });
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* y, int64_t n) {
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            const T g = dy[i];  // loaded unconditionally, so the select vectorizes
            dx[i] = y[i] > T(0) ? g : T(0);
        }
    });
}

template <typename T>
void sigmoid_forward(T* y, const T* x, int64_t n) {
    parallel_for(n, kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) y[i] = sigmoid_scalar(x[i]);
    });
}

template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* y, int64_t n) {
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
    });
}

template <typename T>
void tanh_forward(T* y, const T* x, int64_t n) {
    parallel_for(n, kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) y[i] = std::tanh(x[i]);
    });
}

template <typename T>
void tanh_backward(T* dx, const T* dy, const T* y, int64_t n) {
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
    });
}

namespace {

// Softmax of each row of a block in three passes rather than row by row, so that the
// exponentials run as one loop over every element (exp_block.h), which vectorizes however short
// the rows are: shift each row by its max, exponentiate, normalise (row sums in double). Cols, the
// row width, is known at compile time (a std::integral_constant: rows of up to 8 values, the
// widths of classifier outputs, unroll completely) or only at run time (int64_t).
template <typename T, typename Cols>
void softmax_block(T* y, const T* x, int64_t rows, Cols cols, double* max_out, double* sum_out) {
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T max = xr[0];
        for (int64_t j = 1; j < cols; ++j) max = std::max(max, xr[j]);
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - max;
        if (max_out) max_out[r] = double(max);
    }
    if constexpr (std::is_same_v<T, float>)
        exp_nonpositive_block(y, rows * cols);
    else
        for (int64_t i = 0; i < rows * cols; ++i) y[i] = std::exp(y[i]);
    for (int64_t r = 0; r < rows; ++r) {
        T* yr = y + r * cols;
        double sum = 0.0;
        for (int64_t j = 0; j < cols; ++j) sum += double(yr[j]);
        const T inv = T(1.0 / sum);
        for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
        if (sum_out) sum_out[r] = sum;
    }
}

template <int W, typename T>
void softmax_narrow(T* y, const T* x, int64_t rows, int64_t cols, double* max_out, double* sum_out) {
    if constexpr (W > 1)
        if (cols < W) return softmax_narrow<W - 1>(y, x, rows, cols, max_out, sum_out);
    softmax_block(y, x, rows, std::integral_constant<int64_t, W>(), max_out, sum_out);
}

}  // namespace

template <typename T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t cols, double* max_out, double* sum_out) {
    if (rows == 0 || cols == 0) return;
    if (cols <= 8) return softmax_narrow<8>(y, x, rows, cols, max_out, sum_out);
    softmax_block(y, x, rows, cols, max_out, sum_out);
}

template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
    parallel_for(rows, double(cols) * kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        softmax_rows(y + lo * cols, x + lo * cols, hi - lo, cols, nullptr, nullptr);
    });
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    parallel_for(rows, double(cols), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const T* dyr = dy + r * cols;
            const T* yr = y + r * cols;
            T dot = T(0);
            for (int64_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
            for (int64_t j = 0; j < cols; ++j) dx[r * cols + j] = yr[j] * (dyr[j] - dot);
        }
    });
}

#define LAMINA_INSTANTIATE(T)                                                 \
    template void relu_forward<T>(T*, const T*, int64_t);                     \
    template void relu_backward<T>(T*, const T*, const T*, int64_t);          \
    template void sigmoid_forward<T>(T*, const T*, int64_t);                  \
    template void sigmoid_backward<T>(T*, const T*, const T*, int64_t);       \
    template void tanh_forward<T>(T*, const T*, int64_t);                     \
    template void tanh_backward<T>(T*, const T*, const T*, int64_t);          \
    template void softmax_forward<T>(T*, const T*, int64_t, int64_t);         \
    template void softmax_rows<T>(T*, const T*, int64_t, int64_t, double*, double*); \
    template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
LAMINA_INSTANTIATE(float)
LAMINA_INSTANTIATE(double)
#undef LAMINA_INSTANTIATE

}  // namespace lamina
