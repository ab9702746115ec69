// Portable micro-kernels in plain C++ (compiled for the baseline CPU; the compiler vectorizes the
// NR loop with whatever the baseline offers). Same contract as the ISA kernels:
//   C[m<=MR, n<=NR] = beta*C + alpha * A(MR x k) * B(k x NR)  (+ bias, then ReLU)
// with A(i, p) = a[i*rsa + p*csa] and B(p, j) = b[p*rsb + j] (packed panels or the operands).
#include "gemm/kernel.h"

namespace lamina {

namespace {

template <typename T, int MR, int NR>
void gemm_generic(int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b, int64_t rsb, T* C,
                  int64_t ldc, int64_t m, int64_t n, const Epilogue<T>& ep) {
    if (m > MR) {  // a tall tile (n <= NR/2, A in place): its two halves
        gemm_generic<T, MR, NR>(k, a, rsa, csa, b, rsb, C, ldc, MR, n, ep);
        gemm_generic<T, MR, NR>(k, a + MR * rsa, rsa, csa, b, rsb, C + MR * ldc, ldc, m - MR, n, ep);
        return;
    }
    T acc[MR][NR] = {};
    if (m == MR && n == NR) {  // the common case, with compile-time trip counts
        for (int64_t p = 0; p < k; ++p, a += csa, b += rsb)
            for (int i = 0; i < MR; ++i)
                for (int j = 0; j < NR; ++j) acc[i][j] += a[i * rsa] * b[j];
    } else {
        for (int64_t p = 0; p < k; ++p, a += csa, b += rsb)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) acc[i][j] += a[i * rsa] * b[j];
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

void sgemm_6x8_generic(int64_t k, const float* a, int64_t rsa, int64_t csa, const float* b,
                       int64_t rsb, float* C, int64_t ldc, int64_t m, int64_t n,
                       const Epilogue<float>& ep) {
    gemm_generic<float, 6, 8>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

void dgemm_6x4_generic(int64_t k, const double* a, int64_t rsa, int64_t csa, const double* b,
                       int64_t rsb, double* C, int64_t ldc, int64_t m, int64_t n,
                       const Epilogue<double>& ep) {
    gemm_generic<double, 6, 4>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

}  // namespace lamina
