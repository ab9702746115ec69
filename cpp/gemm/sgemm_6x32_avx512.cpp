// float32 micro-kernel for AVX-512F: a 6 x 32 tile of C in 12 zmm accumulators.
//   C[m<=6, n<=32] = beta*C + alpha * A(6 x k) * B(k x 32)  (+ bias, then ReLU)
// The loop and the write-back are the template in simd_kernel.h.
// Compiled with -mavx512f -mfma; called only when the CPU reports them.
#include "gemm/avx512_traits.h"
#include "gemm/simd_kernel.h"

namespace lamina {

void sgemm_6x32_avx512(int64_t k, const float* a, int64_t rsa, int64_t csa, const float* b,
                       int64_t rsb, float* C, int64_t ldc, int64_t m, int64_t n,
                       const Epilogue<float>& ep) {
    gemm_6x2v<Avx512<float>>(k, a, rsa, csa, b, rsb, C, ldc, m, n, ep);
}

}  // namespace lamina
