// Packing routines. Reads follow the source layout (contiguous along k when the operand is
// row-major in k, along the panel otherwise); writes are always the micro-kernel's order.
#include "gemm/pack.h"

namespace lamina {

template <typename T>
void pack_a_panel(T* Ap, const T* A, int64_t rsa, int64_t csa, int64_t m, int64_t k, int MR) {
    if (csa == 1) {
        // A(i, :) is contiguous: walk each row once, scattering into the panel with stride MR.
        for (int64_t i = 0; i < m; ++i) {
            const T* row = A + i * rsa;
            for (int64_t p = 0; p < k; ++p) Ap[p * MR + i] = row[p];
        }
    } else {
        for (int64_t p = 0; p < k; ++p)
            for (int64_t i = 0; i < m; ++i) Ap[p * MR + i] = A[i * rsa + p * csa];
    }
    for (int64_t p = 0; p < k; ++p)
        for (int64_t i = m; i < MR; ++i) Ap[p * MR + i] = T(0);
}

template <typename T>
void pack_b_panel(T* Bp, const T* B, int64_t rsb, int64_t csb, int64_t k, int64_t n, int NR) {
    if (csb == 1) {
        // B(p, :) is contiguous: each packed row is a straight copy.
        for (int64_t p = 0; p < k; ++p) {
            const T* row = B + p * rsb;
            T* dst = Bp + p * NR;
            for (int64_t j = 0; j < n; ++j) dst[j] = row[j];
            for (int64_t j = n; j < NR; ++j) dst[j] = T(0);
        }
    } else {
        // B(:, j) is the contiguous direction (e.g. B = W.T): walk each column once.
        for (int64_t j = 0; j < n; ++j) {
            const T* col = B + j * csb;
            for (int64_t p = 0; p < k; ++p) Bp[p * NR + j] = col[p * rsb];
        }
        for (int64_t p = 0; p < k; ++p)
            for (int64_t j = n; j < NR; ++j) Bp[p * NR + j] = T(0);
    }
}

template void pack_a_panel<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_a_panel<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_b_panel<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t, int);
template void pack_b_panel<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t, int);

}  // namespace lamina
