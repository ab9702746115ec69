// Activations forward and backward. Elementwise loops are split among threads only when long
// enough to pay for it; every element's result is independent of the split. Row normalisations
// split rows, each row computed whole by one thread.
#include "kernels/activations.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/parallel.h"
#include "core/scratch.h"
#include "vec/exp_block.h"

namespace lamina {

namespace {
constexpr double kMinWorkPerThread = 1 << 15;  // element operations
constexpr double kExpCost = 8;                 // an exp or tanh, in element operations
constexpr double kErfCost = 16;                // an erfc and an exp, or a tanh and a cube
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

template <typename T>
void leaky_relu_forward(T* y, const T* x, int64_t n, double negative_slope) {
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        activate<T>(y + lo, x + lo, hi - lo, Activation::leaky_relu, T(negative_slope));
    });
}

template <typename T>
void leaky_relu_backward(T* dx, const T* dy, const T* x, int64_t n, double negative_slope) {
    const T slope = T(negative_slope);
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            const T g = dy[i];
            dx[i] = x[i] > T(0) ? g : slope * g;
        }
    });
}

template <typename T>
void gelu_forward(T* y, const T* x, int64_t n) {
    parallel_for(n, kErfCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        activate<T>(y + lo, x + lo, hi - lo, Activation::gelu, T(0));
    });
}

template <typename T>
void gelu_backward(T* dx, const T* dy, const T* x, int64_t n) {
    parallel_for(n, kErfCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * gelu_derivative(x[i]);
    });
}

template <typename T>
void gelu_tanh_forward(T* y, const T* x, int64_t n) {
    parallel_for(n, kErfCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        activate<T>(y + lo, x + lo, hi - lo, Activation::gelu_tanh, T(0));
    });
}

template <typename T>
void gelu_tanh_backward(T* dx, const T* dy, const T* x, int64_t n) {
    parallel_for(n, kErfCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * gelu_tanh_derivative(x[i]);
    });
}

template <typename T>
void activation_forward(T* y, const T* x, int64_t n, Activation act, double negative_slope) {
    switch (act) {
        case Activation::none:
            if (y != x && n > 0) std::memcpy(y, x, sizeof(T) * n);
            return;
        case Activation::relu: return relu_forward(y, x, n);
        case Activation::sigmoid: return sigmoid_forward(y, x, n);
        case Activation::tanh: return tanh_forward(y, x, n);
        case Activation::leaky_relu: return leaky_relu_forward(y, x, n, negative_slope);
        case Activation::gelu: return gelu_forward(y, x, n);
        case Activation::gelu_tanh: return gelu_tanh_forward(y, x, n);
    }
}

template <typename T>
void activation_backward(T* dx, const T* dy, const T* saved, int64_t n, Activation act,
                         double negative_slope) {
    switch (act) {
        case Activation::none:
            if (dx != dy && n > 0) std::memcpy(dx, dy, sizeof(T) * n);
            return;
        case Activation::relu: return relu_backward(dx, dy, saved, n);
        case Activation::sigmoid: return sigmoid_backward(dx, dy, saved, n);
        case Activation::tanh: return tanh_backward(dx, dy, saved, n);
        case Activation::leaky_relu: return leaky_relu_backward(dx, dy, saved, n, negative_slope);
        case Activation::gelu: return gelu_backward(dx, dy, saved, n);
        case Activation::gelu_tanh: return gelu_tanh_backward(dx, dy, saved, n);
    }
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
void softmax_narrow(T* y, const T* x, int64_t rows, int64_t cols, double* max_out,
                    double* sum_out) {
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

namespace {

// Rows [0, rows) of log_softmax, in chunks whose exponentials fit a per-thread scratch block:
// shift each row by its max into y, exponentiate a copy in one loop (exp_block.h, as softmax
// does), then subtract each row's log of the sum (in double).
template <typename T>
void log_softmax_rows(T* y, const T* x, int64_t rows, int64_t cols) {
    const int64_t chunk = std::max<int64_t>(1, (1 << 14) / cols);
    T* e = thread_scratch<T>(std::min(rows, chunk) * cols, kActivationScratchSlot);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n_rows = std::min(chunk, rows - r0);
        T* yc = y + r0 * cols;
        const T* xc = x + r0 * cols;
        for (int64_t r = 0; r < n_rows; ++r) {
            const T* xr = xc + r * cols;
            T* yr = yc + r * cols;
            T max = xr[0];
            for (int64_t j = 1; j < cols; ++j) max = std::max(max, xr[j]);
            for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - max;
        }
        std::memcpy(e, yc, sizeof(T) * n_rows * cols);
        if constexpr (std::is_same_v<T, float>)
            exp_nonpositive_block(e, n_rows * cols);
        else
            for (int64_t i = 0; i < n_rows * cols; ++i) e[i] = std::exp(e[i]);
        for (int64_t r = 0; r < n_rows; ++r) {
            double sum = 0.0;
            for (int64_t j = 0; j < cols; ++j) sum += double(e[r * cols + j]);
            const T log_sum = T(std::log(sum));
            for (int64_t j = 0; j < cols; ++j) yc[r * cols + j] -= log_sum;
        }
    }
}

}  // namespace

template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return;
    parallel_for(rows, double(cols) * kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        log_softmax_rows(y + lo * cols, x + lo * cols, hi - lo, cols);
    });
}

template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
    parallel_for(rows, double(cols) * kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const T* dyr = dy + r * cols;
            const T* yr = y + r * cols;
            T sum = T(0);
            for (int64_t j = 0; j < cols; ++j) sum += dyr[j];
            for (int64_t j = 0; j < cols; ++j) dx[r * cols + j] = dyr[j] - std::exp(yr[j]) * sum;
        }
    });
}

template <typename T>
void normalization_forward(T* y, const T* x, int64_t rows, int64_t cols, Normalization norm) {
    switch (norm) {
        case Normalization::none:
            if (y != x && rows * cols > 0) std::memcpy(y, x, sizeof(T) * rows * cols);
            return;
        case Normalization::softmax: return softmax_forward(y, x, rows, cols);
        case Normalization::log_softmax: return log_softmax_forward(y, x, rows, cols);
    }
}

template <typename T>
void normalization_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols,
                            Normalization norm) {
    switch (norm) {
        case Normalization::none:
            if (dx != dy && rows * cols > 0) std::memcpy(dx, dy, sizeof(T) * rows * cols);
            return;
        case Normalization::softmax: return softmax_backward(dx, dy, y, rows, cols);
        case Normalization::log_softmax: return log_softmax_backward(dx, dy, y, rows, cols);
    }
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
    template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);           \
    template void leaky_relu_forward<T>(T*, const T*, int64_t, double);                 \
    template void leaky_relu_backward<T>(T*, const T*, const T*, int64_t, double);      \
    template void gelu_forward<T>(T*, const T*, int64_t);                               \
    template void gelu_backward<T>(T*, const T*, const T*, int64_t);                    \
    template void gelu_tanh_forward<T>(T*, const T*, int64_t);                          \
    template void gelu_tanh_backward<T>(T*, const T*, const T*, int64_t);               \
    template void activation_forward<T>(T*, const T*, int64_t, Activation, double);     \
    template void activation_backward<T>(T*, const T*, const T*, int64_t, Activation, double); \
    template void log_softmax_forward<T>(T*, const T*, int64_t, int64_t);               \
    template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);    \
    template void normalization_forward<T>(T*, const T*, int64_t, int64_t, Normalization); \
    template void normalization_backward<T>(T*, const T*, const T*, int64_t, int64_t,      \
                                            Normalization);
LAMINA_INSTANTIATE(float)
LAMINA_INSTANTIATE(double)
#undef LAMINA_INSTANTIATE

}  // namespace lamina
