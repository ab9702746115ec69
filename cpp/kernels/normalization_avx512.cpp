// The normalization loops (kernels/normalization_loops.h), compiled with -mavx512f -mfma; called only
// when the CPU reports them.
#include "kernels/normalization_loops.h"

namespace lamina {

const NormLoops<float>& norm_loops_f32_avx512() {
    static constexpr NormLoops<float> loops = norm_body::table<float>();
    return loops;
}

const NormLoops<double>& norm_loops_f64_avx512() {
    static constexpr NormLoops<double> loops = norm_body::table<double>();
    return loops;
}

}  // namespace lamina
