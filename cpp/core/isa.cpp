// The run-time ISA choice (isa.h): the CPU check, LAMINA_ISA at import, and set_isa.
#include "core/isa.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

CpuModel read_cpu_model() {
    CpuModel cpu{};
    std::strcpy(cpu.vendor, "unknown");
    std::strcpy(cpu.name, "unknown");
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        std::memcpy(cpu.vendor, &b, 4), std::memcpy(cpu.vendor + 4, &d, 4), std::memcpy(cpu.vendor + 8, &c, 4);
        cpu.vendor[12] = 0;
    }
    if (__get_cpuid(1, &a, &b, &c, &d)) {  // family and model, with their extended fields
        const int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
        cpu.family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
        cpu.model = base_family == 0x6 || base_family == 0xf ? base_model + (((a >> 16) & 0xf) << 4)
                                                             : base_model;
    }
    unsigned brand[12];
    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        for (unsigned i = 0; i < 3; ++i)
            __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
        std::memcpy(cpu.name, brand, 48);
        cpu.name[48] = 0;
        const char* start = cpu.name;  // some brand strings are padded with leading spaces
        while (*start == ' ') ++start;
        std::memmove(cpu.name, start, std::strlen(start) + 1);
    }
#endif
    return cpu;
}

// CPU models whose fastest kernels are narrower than the widest they support, by measurement.
// Zen 4 (AMD family 0x19 with AVX-512) runs 512-bit instructions as two 256-bit halves: its FMA
// loop measured 146 GFLOP/s per core with AVX2 and 117 with AVX-512, so AVX2 is chosen there.
// Zen 5 (family 0x1a) has full-width AVX-512 and Intel's AVX-512 cores run it at full rate.
struct ModelRow {
    const char* vendor;
    int family;
    Isa prefer;
    const char* why;
};
const ModelRow kModelTable[] = {
    {"AuthenticAMD", 0x19, Isa::avx2, "Zen 4 (AMD family 0x19): AVX-512 is double-pumped, AVX2 measured faster"},
};

Isa model_choice(const char** why) {
    const CpuModel cpu = read_cpu_model();
    const Isa widest = widest_supported();
    for (const ModelRow& row : kModelTable)
        if (std::strcmp(cpu.vendor, row.vendor) == 0 && cpu.family == row.family && supported(row.prefer) &&
            int(row.prefer) < int(widest)) {
            *why = row.why;
            return row.prefer;
        }
    *why = "the widest the CPU supports";
    return widest;
}

const char* choice_reason = "the widest the CPU supports";

int parse(const char* name) {  // case-insensitive: LAMINA_ISA=AVX2 means avx2
    for (int i = 0; i < 3; ++i) {
        const char* known = kIsaNames[i];
        std::size_t k = 0;
        while (name[k] && known[k] && std::tolower((unsigned char)name[k]) == known[k]) ++k;
        if (!name[k] && !known[k]) return i;
    }
    return -1;
}

Isa initial_choice() {
    const char* forced = std::getenv("LAMINA_ISA");
    const int isa = forced ? parse(forced) : -1;
    if (isa >= 0 && supported(Isa(isa))) {
        choice_reason = "forced by LAMINA_ISA";
        return Isa(isa);
    }
    // An unknown or unsupported LAMINA_ISA falls back to the best path here, where no exception can
    // be raised (static initialisation); `import lamina` then refuses an unknown name and warns about
    // an unsupported one (lamina/_checks.py: check_isa_request).
    return model_choice(&choice_reason);
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

const CpuModel& cpu_model() {
    static const CpuModel cpu = read_cpu_model();
    return cpu;
}

const char* isa_choice_reason() { return choice_reason; }

bool isa_supported(Isa isa) { return supported(isa); }
bool cpu_has_avx2_fma() { return supported(Isa::avx2); }
bool cpu_has_avx512() { return supported(Isa::avx512); }

}  // namespace lamina
