// e^x for x <= 0 over a block of floats: the exponentials of softmax and cross-entropy, whose
// arguments the kernels have shifted by their row's max. One loop over the whole block, so that
// it vectorizes however short the rows are; compiled once per vector ISA (exp_block_avx2.cpp,
// exp_block_avx512.cpp, and the baseline in exp_block.cpp, which also dispatches on the ISA the
// GEMM kernels use: core/isa.h). With the baseline's 4-lane SSE2 it was 60% of a 32 x 4
// cross-entropy.
#pragma once
#include <cstdint>
#include <cstring>

namespace lamina {

void exp_nonpositive_block(float* y, int64_t n);  // y[i] = e^y[i] for every y[i] <= 0 (NaN stays NaN)

void exp_nonpositive_block_generic(float* y, int64_t n);
void exp_nonpositive_block_avx2(float* y, int64_t n);
void exp_nonpositive_block_avx512(float* y, int64_t n);

// Internal linkage: every file compiled with wider ISA flags has its own copy, so no wide
// instruction can reach baseline code through a shared inline symbol.
namespace {

// x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so n ln2 is exact), e^r by Cephes' degree-6
// polynomial (checked against every float in [-87.33, 0]: 0.99 ulp at worst on the baseline, 1.02
// where the AVX builds contract it into FMAs), then 2^n put into the exponent bits; no branches
// or calls, so a loop over it vectorizes. Below -87.33 (a denormal or zero e^x) it returns 0;
// NaN stays NaN.
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

inline void exp_nonpositive_loop(float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpositive(y[i]);
}

}  // namespace
}  // namespace lamina
