// The blocking table, one row per ISA and dtype, and the run-time choice between them, which
// also picks the loop of softmax exponentials (exp_block.h).
// Chosen once at import from the CPU's features, widest first (AVX-512, then AVX2+FMA, then the
// portable kernels); LAMINA_ISA=avx2 or LAMINA_ISA=generic forces a narrower path, and tests
// switch paths through set_gemm_isa.
//
// Why these blocks (48 KiB L1d and 1 MiB L2 per core, shared L3):
//   KC: a Bp micro-panel (KC x NR) plus an Ap micro-panel (MR x KC) fill about half of L1d;
//   MC: the packed Ap block (MC x KC) fills about a quarter to half of L2;
//   NC: the packed Bp block (KC x NC) stays in the shared L3.
// For AVX2, a sweep of KC in 256..448 and MC in 96..288 moved 1024^3 and 2048^3 by less than the
// run-to-run noise. For AVX-512 a longer KC won (2048^3: KC 192 -> 170, 384 -> 197, 512 -> 215
// GFLOP/s, MC 96..480 flat): fewer passes over C outweigh a Bp micro-panel that overflows L1.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "exp_block.h"
#include "gemm/gemm.h"
#include "gemm/kernel.h"

namespace lamina {

namespace {

enum Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };
const char* const kIsaNames[] = {"generic", "avx2", "avx512"};

#ifdef LAMINA_HAVE_X86_KERNELS
const Blocking<float> sgemm_avx512{"avx512", 6, 32, 144, 512, 4096, sgemm_6x32_avx512};
const Blocking<double> dgemm_avx512{"avx512", 6, 16, 144, 384, 2048, dgemm_6x16_avx512};
const Blocking<float> sgemm_avx2{"avx2", 6, 16, 168, 384, 4080, sgemm_6x16_avx2};
const Blocking<double> dgemm_avx2{"avx2", 6, 8, 120, 256, 2040, dgemm_6x8_avx2};
#endif
const Blocking<float> sgemm_generic{"generic", 6, 8, 120, 256, 2048, sgemm_6x8_generic};
const Blocking<double> dgemm_generic{"generic", 6, 4, 120, 256, 2048, dgemm_6x4_generic};

bool supported(Isa isa) {
#if defined(LAMINA_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (isa == kAvx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    if (isa == kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == kGeneric;
}

Isa widest_supported() { return supported(kAvx512) ? kAvx512 : supported(kAvx2) ? kAvx2 : kGeneric; }

int parse(const char* name) {
    for (int i = 0; i < 3; ++i)
        if (std::strcmp(name, kIsaNames[i]) == 0) return i;
    return -1;
}

std::atomic<int> active{kGeneric};

Isa initial_choice() {
    const char* forced = std::getenv("LAMINA_ISA");
    const int isa = forced ? parse(forced) : -1;
    // An unknown or unsupported LAMINA_ISA falls back to the best path rather than crashing.
    return isa >= 0 && supported(Isa(isa)) ? Isa(isa) : widest_supported();
}

[[maybe_unused]] const bool chosen_at_import = (active.store(initial_choice()), true);

}  // namespace

bool cpu_has_avx2_fma() { return supported(kAvx2); }
bool cpu_has_avx512() { return supported(kAvx512); }

const char* gemm_isa() { return kIsaNames[active.load()]; }

bool set_gemm_isa(const char* name) {
    const int isa = parse(name);
    if (isa < 0 || !supported(Isa(isa))) return false;
    active.store(isa);
    return true;
}

template <>
const Blocking<float>& active_blocking<float>() {
    switch (active.load(std::memory_order_relaxed)) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case kAvx512: return sgemm_avx512;
        case kAvx2: return sgemm_avx2;
#endif
        default: return sgemm_generic;
    }
}

template <>
const Blocking<double>& active_blocking<double>() {
    switch (active.load(std::memory_order_relaxed)) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case kAvx512: return dgemm_avx512;
        case kAvx2: return dgemm_avx2;
#endif
        default: return dgemm_generic;
    }
}

void exp_nonpositive_block(float* y, int64_t n) {
    switch (active.load(std::memory_order_relaxed)) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case kAvx512: return exp_nonpositive_block_avx512(y, n);
        case kAvx2: return exp_nonpositive_block_avx2(y, n);
#endif
        default: return exp_nonpositive_block_generic(y, n);
    }
}

}  // namespace lamina
