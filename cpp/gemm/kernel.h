// What the GEMM engine needs from a micro-kernel, and the per-ISA blocking table.
// Micro-kernel contract, for every file named <s|d>gemm_<MR>x<NR>_<isa>.cpp:
//   C[m<=MR, n<=NR] = beta*C + alpha * Ap(MR x k) * Bp(k x NR)  (+ bias[0..n), then ReLU if asked)
// Ap holds k columns of MR values, Bp k rows of NR values (packed, zero-padded, 64-byte aligned);
// C has row stride ldc. Edge tiles (m < MR or n < NR) touch only their m x n elements.
#pragma once
#include <cstdint>

namespace lamina {

template <typename T>
struct Epilogue {
    T alpha;
    T beta;          // 0: do not read C
    const T* bias;   // bias of this tile's n columns, or nullptr
    bool relu;
};

template <typename T>
using MicroKernel = void (*)(int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc,
                             int64_t m, int64_t n, const Epilogue<T>& ep);

template <typename T>
struct Blocking {
    const char* isa;
    int MR, NR;          // register tile
    int64_t MC, KC, NC;  // cache blocks: Ap (MC x KC) lives in L2, a Bp micro-panel (KC x NR) in L1
    MicroKernel<T> kernel;
};

// Micro-kernels (defined one per file).
void sgemm_6x16_avx2(int64_t k, const float* Ap, const float* Bp, float* C, int64_t ldc,
                     int64_t m, int64_t n, const Epilogue<float>& ep);
void dgemm_6x8_avx2(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                    int64_t m, int64_t n, const Epilogue<double>& ep);
void sgemm_6x32_avx512(int64_t k, const float* Ap, const float* Bp, float* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<float>& ep);
void dgemm_6x16_avx512(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<double>& ep);
void sgemm_6x8_generic(int64_t k, const float* Ap, const float* Bp, float* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<float>& ep);
void dgemm_6x4_generic(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<double>& ep);

// The blocking table of the ISA selected at import (see dispatch.cpp).
template <typename T>
const Blocking<T>& active_blocking();

}  // namespace lamina
