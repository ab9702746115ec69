// Packing: copy a block of A into MR-row micro-panels and a block of B into NR-column micro-panels,
// in the order the micro-kernel reads them, zero-padding the last panel. Strides absorb transposes.
#pragma once
#include <cstdint>

namespace lamina {

// Ap is (k x MR) column-panel: Ap[p*MR + i] = A(i, p) for i < m, 0 for m <= i < MR.
template <typename T>
void pack_a_panel(T* Ap, const T* A, int64_t rsa, int64_t csa, int64_t m, int64_t k, int MR);

// Bp is (k x NR) row-panel: Bp[p*NR + j] = B(p, j) for j < n, 0 for n <= j < NR.
template <typename T>
void pack_b_panel(T* Bp, const T* B, int64_t rsb, int64_t csb, int64_t k, int64_t n, int NR);

}  // namespace lamina
