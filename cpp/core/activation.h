// The activations every layer can apply, and their scalar formulas (forward, and the derivative
// where it is taken from the input). Kept here, below both the GEMM engine (which applies them in
// its epilogue) and the activation kernels, so that both use the same function and a fused product
// gives bitwise what a product followed by the activation gives.
// Included only by baseline files: no ISA-flagged file may instantiate these inline functions.
#pragma once
#include <cmath>
#include <cstdint>

namespace lamina {

// Elementwise: applied to each value on its own, so the GEMM epilogue can apply it to a tile.
enum class Activation : int {
    none = 0,
    relu = 1,
    sigmoid = 2,
    tanh = 3,
    leaky_relu = 4,  // x if x > 0 else negative_slope * x
    gelu = 5,        // x Phi(x), Phi the standard normal CDF (PyTorch approximate='none')
    gelu_tanh = 6,   // PyTorch approximate='tanh'
};

// Over each row (the last axis): needs the whole row, so it runs after the product.
enum class Normalization : int { none = 0, softmax = 1, log_softmax = 2 };

// Whether the backward pass of `act` starts from its input x (true) or from its output y: the
// output of ReLU, sigmoid and tanh determines the derivative; that of GELU does not, and that of
// leaky ReLU does not for a negative slope.
inline bool backward_from_input(Activation act) {
    return act == Activation::leaky_relu || act == Activation::gelu || act == Activation::gelu_tanh;
}

namespace activation_constants {
constexpr double kSqrtHalf = 0.70710678118654752440;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluTanhCubic = 0.044715;
}  // namespace activation_constants

template <typename T>
inline T relu_scalar(T x) { return x < T(0) ? T(0) : x; }  // a NaN fails the test and propagates

template <typename T>
inline T sigmoid_scalar(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T>
inline T leaky_relu_scalar(T x, T negative_slope) { return x > T(0) ? x : negative_slope * x; }

// 0.5 x (1 + erf(x / sqrt 2)) written as 0.5 x erfc(-x / sqrt 2): the same function, without the
// cancellation of 1 + erf for negative x, where erfc keeps full relative precision.
template <typename T>
inline T gelu_scalar(T x) {
    return T(0.5) * x * std::erfc(-x * T(activation_constants::kSqrtHalf));
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
template <typename T>
inline T gelu_derivative(T x) {
    using namespace activation_constants;
    const T cdf = T(0.5) * std::erfc(-x * T(kSqrtHalf));
    const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
    return cdf + x * pdf;
}

// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
template <typename T>
inline T gelu_tanh_scalar(T x) {
    using namespace activation_constants;
    const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(u));
}

// 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx, du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
// Where tanh^2 u rounds to 1 the second term is 0 (written so, since du/dx may be inf there).
template <typename T>
inline T gelu_tanh_derivative(T x) {
    using namespace activation_constants;
    const T x2 = x * x;
    const T t = std::tanh(T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x2 * x));
    const T sech2 = T(1) - t * t;
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * x2);
    return T(0.5) * (T(1) + t) + (sech2 == T(0) ? T(0) : T(0.5) * x * sech2 * du);
}

// y[i] = act(x[i]) for i in [0, n) (y may be x): the loop the GEMM epilogue runs on a finished
// tile row and the activation kernels run on their ranges, so both round identically.
template <typename T>
inline void activate(T* y, const T* x, int64_t n, Activation act, T negative_slope) {
    switch (act) {
        case Activation::none:
            if (y != x)
                for (int64_t i = 0; i < n; ++i) y[i] = x[i];
            break;
        case Activation::relu:
            for (int64_t i = 0; i < n; ++i) y[i] = relu_scalar(x[i]);
            break;
        case Activation::sigmoid:
            for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_scalar(x[i]);
            break;
        case Activation::tanh:
            for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
            break;
        case Activation::leaky_relu:
            for (int64_t i = 0; i < n; ++i) y[i] = leaky_relu_scalar(x[i], negative_slope);
            break;
        case Activation::gelu:
            for (int64_t i = 0; i < n; ++i) y[i] = gelu_scalar(x[i]);
            break;
        case Activation::gelu_tanh:
            for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh_scalar(x[i]);
            break;
    }
}

}  // namespace lamina
