// The logistic sigmoid and tanh over a block of floats: the gate nonlinearities of the recurrent
// layers. Branch-free (selects, not branches) so that one loop over the block vectorizes; compiled
// once per vector ISA (sigmoid_tanh_block_avx2.cpp, _avx512.cpp, and the baseline in
// sigmoid_tanh_block.cpp, which dispatches on the ISA the GEMM kernels use: core/isa.h).
#pragma once
#include <cstdint>

#include "vec/exp_block.h"

namespace lamina {

void sigmoid_block(float* y, const float* x, int64_t n);  // y[i] = 1 / (1 + e^-x[i]); y may be x
void tanh_block(float* y, const float* x, int64_t n);     // y[i] = tanh x[i]; y may be x

void sigmoid_block_generic(float* y, const float* x, int64_t n);
void sigmoid_block_avx2(float* y, const float* x, int64_t n);
void sigmoid_block_avx512(float* y, const float* x, int64_t n);
void tanh_block_generic(float* y, const float* x, int64_t n);
void tanh_block_avx2(float* y, const float* x, int64_t n);
void tanh_block_avx512(float* y, const float* x, int64_t n);

// Internal linkage, as in exp_block.h: each ISA's file has its own copy.
namespace {

// sigma(x) = 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below: e^-|x| never overflows, and
// neither form cancels. About 2 ulps at worst (2.1 on a dense grid of the float range, tested);
// NaN stays NaN.
inline float sigmoid_value(float x) {
    const float e = exp_nonpositive(x < 0.0f ? x : -x);
    const float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

// tanh x = sign(x) (1 - e) / (1 + e) with e = e^-2|x| for |x| >= 0.625, where 1 - e does not
// cancel; below, Cephes's odd polynomial for tanhf (x + x^3 P(x^2)). 1.5 ulps at worst; NaN
// stays NaN.
inline float tanh_value(float x) {
    const float m = x < 0.0f ? -x : x;
    const float e = exp_nonpositive(-2.0f * m);
    const float big = (1.0f - e) / (1.0f + e);
    const float z = x * x;
    const float small =
        ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
          1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    return m < 0.625f ? small : (x < 0.0f ? -big : big);
}

inline void sigmoid_loop(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_value(x[i]);
}

inline void tanh_loop(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = tanh_value(x[i]);
}

}  // namespace
}  // namespace lamina
