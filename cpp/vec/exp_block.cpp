// The softmax exponentials' loop for the baseline CPU, and the switch to the AVX2 or AVX-512 copy
// by the ISA in use (core/isa.h), so that LAMINA_ISA and set_isa move it with the GEMM kernels.
#include "vec/exp_block.h"

#include "core/isa.h"

namespace lamina {

void exp_nonpositive_block_generic(float* y, int64_t n) { exp_nonpositive_loop(y, n); }

void exp_nonpositive_block(float* y, int64_t n) {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return exp_nonpositive_block_avx512(y, n);
        case Isa::avx2: return exp_nonpositive_block_avx2(y, n);
#endif
        default: return exp_nonpositive_block_generic(y, n);
    }
}

}  // namespace lamina
