// The softmax exponentials' loop (exp_block.h), compiled with -mavx2 -mfma; called only
// when the CPU reports them.
#include "vec/exp_block.h"

namespace lamina {

void exp_nonpositive_block_avx2(float* y, int64_t n) { exp_nonpositive_loop(y, n); }

}  // namespace lamina
