// The activations every layer can apply, and their scalar formulas. Kept here, below both the GEMM
// engine (which applies them in its epilogue) and the activation kernels, so that both use the same
// function and a fused product gives bitwise what a product followed by the activation gives.
// Included only by baseline files: no ISA-flagged file may instantiate these inline functions.
#pragma once
#include <cmath>

namespace lamina {

// Elementwise: applied to each value on its own, so the GEMM epilogue can apply it to a tile.
enum class Activation : int { none = 0, relu = 1, sigmoid = 2, tanh = 3 };

// Over each row (the last axis): needs the whole row, so it runs after the product.
enum class Normalization : int { none = 0, softmax = 1 };

template <typename T>
inline T sigmoid_scalar(T x) { return T(1) / (T(1) + std::exp(-x)); }

}  // namespace lamina
