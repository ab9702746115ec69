// The one matrix-multiply entry point of lamina, serving every dense product forward and backward:
//   C = act(alpha * A @ B + beta * C + bias)
// act is any elementwise activation (core/activation.h; negative_slope is leaky ReLU's).
// A and B are read through element strides, so transposed and non-contiguous operands cost nothing:
// the packing routines absorb the layout. See gemm.cpp for the five BLIS loops.
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

template <typename T>
void gemm(T* C, int64_t ldc,                      // C is (M, N), row stride ldc, column stride 1
          const T* A, int64_t rsa, int64_t csa,   // A is (M, K): A(i, p) = A[i*rsa + p*csa]
          const T* B, int64_t rsb, int64_t csb,   // B is (K, N): B(p, j) = B[p*rsb + j*csb]
          const T* bias,                          // bias is (N,) added to every row, or nullptr
          int64_t M, int64_t N, int64_t K,
          T alpha, T beta,                        // beta == 0: C is written, never read
          Activation act, T negative_slope);

// ---- virtual operands ------------------------------------------------------------------------
// An operand that is not in memory as a strided matrix: the engine asks the caller to write its
// packed panels, in the layout the micro-kernel reads (the packing contract of pack.h). This is
// how a caller runs an implicit product, e.g. a matrix gathered on the fly, without ever
// materialising the operand. The engine knows nothing of what the source computes.
template <typename T>
class PanelSource {
  public:
    virtual ~PanelSource() = default;
    // As A: Ap[p*MR + i] = A(i0 + i, p0 + p) for i < m, p < k; zero for m <= i < MR.
    virtual void pack_a(T* Ap, int64_t i0, int64_t p0, int64_t m, int64_t k, int MR) const = 0;
    // A block of m rows as consecutive panels: panel t (rows i0 + t*MR ..) at Ap + t*MR*k, as
    // pack_a writes it. The engine packs A through this; a source whose gather has a cost per
    // call (index tables, run setup) overrides it to pay that once per block, not per panel.
    virtual void pack_a_block(T* Ap, int64_t i0, int64_t p0, int64_t m, int64_t k, int MR) const {
        for (int64_t i = 0; i < m; i += MR)
            pack_a(Ap + i * k, i0 + i, p0, m - i < MR ? m - i : MR, k, MR);
    }
    // True when pack_a_block writes the block row-major instead (Ap[i*k + p] = A(i0 + i, p0 + p),
    // no padding rows), which the micro-kernel reads in place as it reads any strided A: for a
    // gather whose runs lie along A's rows, this saves transposing them into panels. Same sums.
    virtual bool packs_a_rows() const { return false; }
    // As B: Bp[p*width + j] = B(p0 + p, j0 + j) for p < k, j < n; zero for n <= j < width.
    virtual void pack_b(T* Bp, int64_t p0, int64_t j0, int64_t k, int64_t n, int width) const = 0;
};

// An operand of gemm_ex: a strided matrix (data, rs, cs), or a source (data ignored).
template <typename T>
struct Operand {
    const T* data = nullptr;
    int64_t rs = 0, cs = 0;
    const PanelSource<T>* source = nullptr;
};

// A per-channel affine of the epilogue, applied after the biases and before the activation:
// c = fma(c, scale[k], shift[k]), k the element's row (per_row: scale, shift (M,)) or its column
// ((N,)). The value it starts from is exactly what C would hold without it, so a product with it
// gives the same bits as the product, then the fma (an inference batch norm folded into the
// convolution or dense layer before it). scale null: none.
template <typename T>
struct EpilogueAffine {
    const T* scale = nullptr;
    const T* shift = nullptr;
    bool per_row = false;
};

// gemm() with operands that may be sources. A source is always packed (through its methods);
// a matrix operand follows the packing mode as in gemm(). max_threads caps the threads the call
// may use (0: as gemm() decides; 1: this thread only, for callers that already run in parallel).
// row_bias (M,), or nullptr, is added to every element of its row of C after the product (before
// the activation): C = act(affine(alpha*A@B + beta*C + bias + row_bias)). Threads split M or N
// only, so results are bitwise the same for any thread count. A source's methods are called
// concurrently from several threads: they must only read shared state.
template <typename T>
void gemm_ex(T* C, int64_t ldc, const Operand<T>& A, const Operand<T>& B, const T* bias,
             int64_t M, int64_t N, int64_t K, T alpha, T beta, Activation act, T negative_slope,
             int max_threads = 0, const T* row_bias = nullptr,
             const EpilogueAffine<T>& affine = EpilogueAffine<T>());

// Which operands the micro-kernel reads packed: "auto" (packing only where it pays; the default),
// "packed" (always both) or "in_place" (every operand the kernel can read in place: A always,
// B when its rows are contiguous). Results are bitwise the same in every mode; tests use this to
// run each shape through both code paths.
const char* gemm_packing();
bool set_gemm_packing(const char* mode);  // false if the mode is unknown

}  // namespace lamina
