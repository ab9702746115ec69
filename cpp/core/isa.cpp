// The run-time ISA choice (isa.h): the CPU check, LAMINA_ISA at import, and set_isa.
#include "core/isa.h"

#include <cstdlib>
#include <cstring>

namespace lamina {

namespace {

const char* const kIsaNames[] = {"generic", "avx2", "avx512"};

bool supported(Isa isa) {
#if defined(LAMINA_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (isa == Isa::avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    if (isa == Isa::avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == Isa::generic;
}

Isa widest_supported() {
    return supported(Isa::avx512) ? Isa::avx512 : supported(Isa::avx2) ? Isa::avx2 : Isa::generic;
}

int parse(const char* name) {
    for (int i = 0; i < 3; ++i)
        if (std::strcmp(name, kIsaNames[i]) == 0) return i;
    return -1;
}

Isa initial_choice() {
    const char* forced = std::getenv("LAMINA_ISA");
    const int isa = forced ? parse(forced) : -1;
    // An unknown or unsupported LAMINA_ISA falls back to the best path rather than crashing.
    return isa >= 0 && supported(Isa(isa)) ? Isa(isa) : widest_supported();
}

}  // namespace

namespace detail {
std::atomic<int> active_isa{int(initial_choice())};
}

const char* isa_name(Isa isa) { return kIsaNames[int(isa)]; }
const char* active_isa_name() { return isa_name(active_isa()); }

bool set_isa(const char* name) {
    const int isa = parse(name);
    if (isa < 0 || !supported(Isa(isa))) return false;
    detail::active_isa.store(isa);
    return true;
}

bool cpu_has_avx2_fma() { return supported(Isa::avx2); }
bool cpu_has_avx512() { return supported(Isa::avx512); }

}  // namespace lamina
