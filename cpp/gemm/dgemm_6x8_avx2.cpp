// float64 micro-kernel for AVX2 + FMA: a 6 x 8 tile of C in 12 ymm accumulators.
//   C[m<=6, n<=8] = beta*C + alpha * A(6 x k) * B(k x 8)  (+ bias, then ReLU)
// The loop and the write-back are the template in simd_kernel.h.
// Compiled with -mavx2 -mfma; called only when the CPU reports them.
#include "gemm/avx2_traits.h"
#include "gemm/simd_kernel.h"

namespace lamina {

void dgemm_6x8_avx2(int64_t k, const double* a, int64_t rsa, int64_t csa, const double* b,
                    int64_t rsb, double* C, int64_t ldc, int64_t m, int64_t n,
                    const Epilogue<double>& ep) {
    gemm_6x2v<Avx2<double>>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

}  // namespace lamina
