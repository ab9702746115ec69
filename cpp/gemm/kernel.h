// What the GEMM engine needs from a micro-kernel, and the per-ISA blocking table.
// Micro-kernel contract, for every file named <s|d>gemm_<MR>x<NR>_<isa>.cpp:
//   C[m, n] = beta*C + alpha * A(m x k) * B(k x n)  (+ bias[0..n), then ReLU if asked)
// with m <= MR and n <= NR, or m <= 2*MR when n <= NR/2 and A is read in place (a narrow tile
// of twice the rows). A(i, p) = a[i*rsa + p*csa], B(p, j) = b[p*rsb + j]: either packed panels
// (Ap: k columns of MR values, rsa 1, csa MR; Bp: k rows of NR values, or NR/2 for a panel that
// narrow, rsb the panel width) or the operands in place. C has row stride ldc. Edge tiles read only
// rows i < m of A but every column of B up to the panel width (so an edge tile of B is always
// packed, zero-padded), and touch only their m x n elements of C.
#pragma once
#include <cstdint>

namespace lamina {

template <typename T>
struct Epilogue {
    T alpha;
    T beta;          // 0: do not read C
    const T* bias;   // bias of this tile's n columns, or nullptr
    bool relu;
};

// The signature every micro-kernel has (a function type), and a pointer to one.
template <typename T>
using MicroKernelFunction = void(int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                                 int64_t rsb, T* C, int64_t ldc, int64_t m, int64_t n,
                                 const Epilogue<T>& ep);
template <typename T>
using MicroKernel = MicroKernelFunction<T>*;

template <typename T>
struct Blocking {
    const char* isa;
    int MR, NR;          // register tile
    int64_t MC, KC, NC;  // cache blocks: Ap (MC x KC) lives in L2, a Bp micro-panel (KC x NR) in L1
    MicroKernel<T> kernel;
};

// Micro-kernels, defined one per file with the signature above.
MicroKernelFunction<float> sgemm_6x16_avx2, sgemm_6x32_avx512, sgemm_6x8_generic;
MicroKernelFunction<double> dgemm_6x8_avx2, dgemm_6x16_avx512, dgemm_6x4_generic;

// The blocking table of the ISA selected at import (see dispatch.cpp).
template <typename T>
const Blocking<T>& active_blocking();

}  // namespace lamina
