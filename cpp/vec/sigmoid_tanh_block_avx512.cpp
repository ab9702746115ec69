// The gate nonlinearities' loops (sigmoid_tanh_block.h), compiled with -mavx512f -mfma; called only
// when the CPU reports them.
#include "vec/sigmoid_tanh_block.h"

namespace lamina {

void sigmoid_block_avx512(float* y, const float* x, int64_t n) { sigmoid_loop(y, x, n); }
void tanh_block_avx512(float* y, const float* x, int64_t n) { tanh_loop(y, x, n); }

}  // namespace lamina
