// AVX-512 vector operations for the micro-kernel template in simd_kernel.h: zmm registers of
// 16 floats or 8 doubles, lane masks as k registers.
// Included only by files compiled with -mavx512f -mfma; everything has internal linkage.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace lamina {
namespace {

template <typename T>
struct Avx512;

template <>
struct Avx512<float> {
    using V = __m512;
    using Mask = __mmask16;
    static constexpr int kLanes = 16;
    static Mask all() { return Mask(0xFFFF); }
    // Lanes j < k.
    static Mask first_lanes(int64_t k) { return k <= 0 ? Mask(0) : k >= 16 ? all() : Mask((1u << k) - 1); }
    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V loadu(const float* p) { return _mm512_loadu_ps(p); }
    static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V max(V a, V b) { return _mm512_max_ps(a, b); }
    static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V maskload(const float* p, Mask mask) { return _mm512_maskz_loadu_ps(mask, p); }
    static void maskstore(float* p, Mask mask, V v) { _mm512_mask_storeu_ps(p, mask, v); }
};

template <>
struct Avx512<double> {
    using V = __m512d;
    using Mask = __mmask8;
    static constexpr int kLanes = 8;
    static Mask all() { return Mask(0xFF); }
    static Mask first_lanes(int64_t k) { return k <= 0 ? Mask(0) : k >= 8 ? all() : Mask((1u << k) - 1); }
    static V zero() { return _mm512_setzero_pd(); }
    static V set1(double x) { return _mm512_set1_pd(x); }
    static V loadu(const double* p) { return _mm512_loadu_pd(p); }
    static V broadcast(const double* p) { return _mm512_set1_pd(*p); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static V max(V a, V b) { return _mm512_max_pd(a, b); }
    static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
    static V maskload(const double* p, Mask mask) { return _mm512_maskz_loadu_pd(mask, p); }
    static void maskstore(double* p, Mask mask, V v) { _mm512_mask_storeu_pd(p, mask, v); }
};

}  // namespace
}  // namespace lamina
