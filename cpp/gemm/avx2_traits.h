// AVX2 vector operations for the micro-kernel template in simd_kernel.h: ymm registers of
// 8 floats or 4 doubles, lane masks as ymm integers (maskload/maskstore).
// Included only by files compiled with -mavx2 -mfma; everything has internal linkage.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace lamina {
namespace {

template <typename T>
struct Avx2;

template <>
struct Avx2<float> {
    using V = __m256;
    static constexpr int kLanes = 8;
    using Mask = __m256i;
    static Mask all() { return _mm256_set1_epi32(-1); }
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V loadu(const float* p) { return _mm256_loadu_ps(p); }
    static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
    // Lanes j < k, as a mask for maskload/maskstore.
    static Mask first_lanes(int64_t k) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V maskload(const float* p, Mask mask) { return _mm256_maskload_ps(p, mask); }
    static void maskstore(float* p, Mask mask, V v) { _mm256_maskstore_ps(p, mask, v); }
};

template <>
struct Avx2<double> {
    using V = __m256d;
    static constexpr int kLanes = 4;
    using Mask = __m256i;
    static Mask all() { return _mm256_set1_epi32(-1); }
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V loadu(const double* p) { return _mm256_loadu_pd(p); }
    static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
    static Mask first_lanes(int64_t k) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static V maskload(const double* p, Mask mask) { return _mm256_maskload_pd(p, mask); }
    static void maskstore(double* p, Mask mask, V v) { _mm256_maskstore_pd(p, mask, v); }
};

}  // namespace
}  // namespace lamina
