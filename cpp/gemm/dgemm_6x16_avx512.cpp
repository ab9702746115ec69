// float64 micro-kernel for AVX-512F: a 6 x 16 tile of C in 12 zmm accumulators.
//   C[m<=6, n<=16] = beta*C + alpha * A(6 x k) * B(k x 16)  (+ bias, then ReLU)
// The loop and the write-back are the template in simd_kernel.h.
// Compiled with -mavx512f -mfma; called only when the CPU reports them.
#include "gemm/avx512_traits.h"
#include "gemm/simd_kernel.h"

namespace lamina {

void dgemm_6x16_avx512(int64_t k, const double* a, int64_t rsa, int64_t csa, const double* b,
                       int64_t rsb, double* C, int64_t ldc, int64_t m, int64_t n,
                       const Epilogue<double>& ep) {
    gemm_6x2v<Avx512<double>>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

}  // namespace lamina
