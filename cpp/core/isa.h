// Which vector ISA the kernels run on: chosen once at import from the CPU's features and model
// (the widest it has, AVX-512, then AVX2+FMA, then the portable code, unless the CPU model table in
// isa.cpp says a narrower one is faster there), forced by LAMINA_ISA, switched by tests through
// set_isa (names in any case). The GEMM engine's blocking table and the vector loops (vec/) both read
// it, so one switch moves every ISA-specific path together.
#pragma once
#include <atomic>

namespace lamina {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

namespace detail {
extern std::atomic<int> active_isa;  // an Isa; read on every kernel call, so kept inline below
}

inline Isa active_isa() { return Isa(detail::active_isa.load(std::memory_order_relaxed)); }

const char* isa_name(Isa isa);  // "generic", "avx2" or "avx512"
constexpr Isa kAllIsas[] = {Isa::avx512, Isa::avx2, Isa::generic};  // widest first
const char* active_isa_name();
bool set_isa(const char* name);  // false if the name is unknown or the CPU lacks that ISA; any case
bool isa_supported(Isa isa);     // the CPU has it and this build has kernels for it
bool cpu_has_avx2_fma();
bool cpu_has_avx512();

// The CPU as CPUID describes it, and why the ISA in use was chosen at import.
struct CpuModel {
    char vendor[13];  // "GenuineIntel", "AuthenticAMD", ...
    int family, model;
    char name[49];    // the brand string
};
const CpuModel& cpu_model();
const char* isa_choice_reason();

}  // namespace lamina
