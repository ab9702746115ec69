// Which vector ISA the kernels run on: chosen once at import from the CPU's features (widest
// first: AVX-512, then AVX2+FMA, then the portable code), forced narrower by LAMINA_ISA, switched
// by tests through set_isa. The GEMM engine's blocking table and the vector loops (vec/) both read
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
const char* active_isa_name();
bool set_isa(const char* name);  // false if the name is unknown or the CPU lacks that ISA
bool cpu_has_avx2_fma();
bool cpu_has_avx512();

}  // namespace lamina
