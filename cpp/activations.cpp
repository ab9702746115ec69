// Activations forward and backward. Elementwise loops are split among threads only when long
// enough to pay for it; every element's result is independent of the split.
#include "activations.h"

#include <algorithm>

#include "parallel.h"

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

// Three passes over the block instead of one per row, so that the exponentials run as one loop
// over every element, which vectorizes however short the rows are (a 32 x 4 cross-entropy spent
// most of its time in per-row loops of 4): shift each row by its max, exponentiate, normalise.
// Row sums are taken in double.
template <typename T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t cols, double* max_out, double* sum_out) {
    if (rows == 0 || cols == 0) return;
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T max = xr[0];
        for (int64_t j = 1; j < cols; ++j) max = std::max(max, xr[j]);
        for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - max;
        if (max_out) max_out[r] = double(max);
    }
    const int64_t n = rows * cols;
    for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpositive(y[i]);
    for (int64_t r = 0; r < rows; ++r) {
        T* yr = y + r * cols;
        double sum = 0.0;
        for (int64_t j = 0; j < cols; ++j) sum += double(yr[j]);
        const T inv = T(1.0 / sum);
        for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
        if (sum_out) sum_out[r] = sum;
    }
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
