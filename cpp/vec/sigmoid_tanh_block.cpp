// The gate nonlinearities' loops for the baseline CPU, and the switch to the AVX2 or AVX-512 copy
// by the ISA in use (core/isa.h), so that LAMINA_ISA and set_isa move them with the GEMM kernels.
#include "vec/sigmoid_tanh_block.h"

#include "core/isa.h"

namespace lamina {

void sigmoid_block_generic(float* y, const float* x, int64_t n) { sigmoid_loop(y, x, n); }
void tanh_block_generic(float* y, const float* x, int64_t n) { tanh_loop(y, x, n); }

void sigmoid_block(float* y, const float* x, int64_t n) {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return sigmoid_block_avx512(y, x, n);
        case Isa::avx2: return sigmoid_block_avx2(y, x, n);
#endif
        default: return sigmoid_block_generic(y, x, n);
    }
}

void tanh_block(float* y, const float* x, int64_t n) {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return tanh_block_avx512(y, x, n);
        case Isa::avx2: return tanh_block_avx2(y, x, n);
#endif
        default: return tanh_block_generic(y, x, n);
    }
}

}  // namespace lamina
