// The blocking table, one row per ISA and dtype, and the run-time choice between them.
// Chosen once at import from the CPU's features (LAMINA_ISA=generic forces the portable path);
// tests switch paths through set_gemm_isa.
//
// Why these blocks (AVX2 rows, 48 KiB L1d and 1 MiB L2 per core, shared L3); a sweep of
// KC in 256..448 and MC in 96..288 moved 1024^3 and 2048^3 by less than the run-to-run noise:
//   KC: a Bp micro-panel (KC x NR) plus an Ap micro-panel (MR x KC) fill about half of L1d;
//   MC: the packed Ap block (MC x KC) fills about half of L2;
//   NC: the packed Bp block (KC x NC) stays in the shared L3.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "gemm/gemm.h"
#include "gemm/kernel.h"

namespace lamina {

namespace {

#ifdef LAMINA_HAVE_AVX2
const Blocking<float> sgemm_avx2{"avx2", 6, 16, 168, 384, 4080, sgemm_6x16_avx2};
const Blocking<double> dgemm_avx2{"avx2", 6, 8, 120, 256, 2040, dgemm_6x8_avx2};
#endif
const Blocking<float> sgemm_generic{"generic", 6, 8, 120, 256, 2048, sgemm_6x8_generic};
const Blocking<double> dgemm_generic{"generic", 6, 4, 120, 256, 2048, dgemm_6x4_generic};

std::atomic<bool> use_avx2{false};

bool initial_choice() {
    const char* forced = std::getenv("LAMINA_ISA");
    if (forced && std::strcmp(forced, "generic") == 0) return false;
    return cpu_has_avx2_fma();
}

[[maybe_unused]] const bool chosen_at_import = (use_avx2.store(initial_choice()), true);

}  // namespace

bool cpu_has_avx2_fma() {
#if defined(LAMINA_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

const char* gemm_isa() { return use_avx2.load() ? "avx2" : "generic"; }

bool set_gemm_isa(const char* name) {
    if (std::strcmp(name, "generic") == 0) {
        use_avx2.store(false);
        return true;
    }
    if (std::strcmp(name, "avx2") == 0 && cpu_has_avx2_fma()) {
        use_avx2.store(true);
        return true;
    }
    return false;
}

template <>
const Blocking<float>& active_blocking<float>() {
#ifdef LAMINA_HAVE_AVX2
    if (use_avx2.load(std::memory_order_relaxed)) return sgemm_avx2;
#endif
    return sgemm_generic;
}

template <>
const Blocking<double>& active_blocking<double>() {
#ifdef LAMINA_HAVE_AVX2
    if (use_avx2.load(std::memory_order_relaxed)) return dgemm_avx2;
#endif
    return dgemm_generic;
}

}  // namespace lamina
