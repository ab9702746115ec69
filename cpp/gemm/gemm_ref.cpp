// Portable micro-kernels in plain C++ (compiled for the baseline CPU; the compiler vectorizes the
// NR loop with whatever the baseline offers). Same contract as the ISA kernels:
//   C[m<=MR, n<=NR] = beta*C + alpha * Ap(MR x k) * Bp(k x NR)  (+ bias, then ReLU)
#include "gemm/kernel.h"

namespace lamina {

namespace {

template <typename T, int MR, int NR>
void gemm_generic(int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc, int64_t m, int64_t n,
                  const Epilogue<T>& ep) {
    T acc[MR][NR] = {};
    for (int64_t p = 0; p < k; ++p) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += Ap[i] * Bp[j];
        Ap += MR;
        Bp += NR;
    }
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            T v = ep.alpha * acc[i][j];
            if (ep.beta != T(0)) v += ep.beta * C[i * ldc + j];
            if (ep.bias) v += ep.bias[j];
            if (ep.relu) v = v < T(0) ? T(0) : v;  // a NaN fails the test and propagates
            C[i * ldc + j] = v;
        }
    }
}

}  // namespace

void sgemm_6x8_generic(int64_t k, const float* Ap, const float* Bp, float* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<float>& ep) {
    gemm_generic<float, 6, 8>(k, Ap, Bp, C, ldc, m, n, ep);
}

void dgemm_6x4_generic(int64_t k, const double* Ap, const double* Bp, double* C, int64_t ldc,
                       int64_t m, int64_t n, const Epilogue<double>& ep) {
    gemm_generic<double, 6, 4>(k, Ap, Bp, C, ldc, m, n, ep);
}

}  // namespace lamina
