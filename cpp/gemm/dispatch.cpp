// The blocking table, one row per ISA and dtype, and the choice between them by the ISA in use
// (core/isa.h: chosen at import, LAMINA_ISA, set_isa).
//
// Why these blocks (48 KiB L1d and 1 MiB L2 per core, shared L3):
//   KC: a Bp micro-panel (KC x NR) plus an Ap micro-panel (MR x KC) fill about half of L1d;
//   MC: the packed Ap block (MC x KC) fills about a quarter to half of L2;
//   NC: the packed Bp block (KC x NC) stays in the shared L3.
// For AVX2, a sweep of KC in 256..448 and MC in 96..288 moved 1024^3 and 2048^3 by less than the
// run-to-run noise. For AVX-512 a longer KC won (2048^3: KC 192 -> 170, 384 -> 197, 512 -> 215
// GFLOP/s, MC 96..480 flat): fewer passes over C outweigh a Bp micro-panel that overflows L1.
#include "core/isa.h"
#include "gemm/kernel.h"

namespace lamina {

namespace {

#ifdef LAMINA_HAVE_X86_KERNELS
const Blocking<float> sgemm_avx512{"avx512", 6, 32, 144, 512, 4096, sgemm_6x32_avx512};
const Blocking<double> dgemm_avx512{"avx512", 6, 16, 144, 384, 2048, dgemm_6x16_avx512};
const Blocking<float> sgemm_avx2{"avx2", 6, 16, 168, 384, 4080, sgemm_6x16_avx2};
const Blocking<double> dgemm_avx2{"avx2", 6, 8, 120, 256, 2040, dgemm_6x8_avx2};
#endif
const Blocking<float> sgemm_generic{"generic", 6, 8, 120, 256, 2048, sgemm_6x8_generic};
const Blocking<double> dgemm_generic{"generic", 6, 4, 120, 256, 2048, dgemm_6x4_generic};

}  // namespace

template <>
const Blocking<float>& active_blocking<float>() {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return sgemm_avx512;
        case Isa::avx2: return sgemm_avx2;
#endif
        default: return sgemm_generic;
    }
}

template <>
const Blocking<double>& active_blocking<double>() {
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return dgemm_avx512;
        case Isa::avx2: return dgemm_avx2;
#endif
        default: return dgemm_generic;
    }
}

}  // namespace lamina
