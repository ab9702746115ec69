// The epilogue's per-channel fma (scale_shift.h), compiled with -mavx512f -mfma; called only
// when the CPU reports them.
#include "vec/scale_shift.h"

namespace lamina {

void scale_shift_block_avx512(float* C, int64_t ldc, int64_t m, int64_t n, const float* scale,
                              const float* shift, bool per_row, bool relu) {
    scale_shift_loop(C, ldc, m, n, scale, shift, per_row, relu);
}
void scale_shift_block_avx512(double* C, int64_t ldc, int64_t m, int64_t n,
                              const double* scale, const double* shift, bool per_row,
                              bool relu) {
    scale_shift_loop(C, ldc, m, n, scale, shift, per_row, relu);
}

}  // namespace lamina
