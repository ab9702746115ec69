// The epilogue's per-channel fma for the baseline CPU, and the switch to the AVX2 or AVX-512 copy
// by the ISA in use (core/isa.h), so that LAMINA_ISA and set_isa move it with the GEMM kernels.
#include "vec/scale_shift.h"

#include "core/isa.h"

namespace lamina {

void scale_shift_block_generic(float* C, int64_t ldc, int64_t m, int64_t n, const float* scale,
                               const float* shift, bool per_row, bool relu) {
    scale_shift_loop(C, ldc, m, n, scale, shift, per_row, relu);
}
void scale_shift_block_generic(double* C, int64_t ldc, int64_t m, int64_t n, const double* scale,
                               const double* shift, bool per_row, bool relu) {
    scale_shift_loop(C, ldc, m, n, scale, shift, per_row, relu);
}

template <typename T>
void scale_shift_block(T* C, int64_t ldc, int64_t m, int64_t n, const T* scale, const T* shift,
                       bool per_row, bool relu) {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512:
            return scale_shift_block_avx512(C, ldc, m, n, scale, shift, per_row, relu);
        case Isa::avx2: return scale_shift_block_avx2(C, ldc, m, n, scale, shift, per_row, relu);
#endif
        default: return scale_shift_block_generic(C, ldc, m, n, scale, shift, per_row, relu);
    }
}

template void scale_shift_block<float>(float*, int64_t, int64_t, int64_t, const float*,
                                       const float*, bool, bool);
template void scale_shift_block<double>(double*, int64_t, int64_t, int64_t, const double*,
                                        const double*, bool, bool);

}  // namespace lamina
