// Dense layer forward and backward: three GEMM calls whose transposes the engine's packing absorbs,
// plus the bias gradient.
#include "kernels/dense.h"

#include <algorithm>

#include "core/parallel.h"

namespace lamina {

template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t M, int64_t K, int64_t N,
                   Activation act, double negative_slope, const T* scale, const T* shift) {
    // B = W.T: B(p, j) = W[j*K + p], so row stride 1 and column stride K.
    if (!scale) {
        gemm<T>(y, N, x, K, 1, W, 1, K, b, M, N, K, T(1), T(0), act, T(negative_slope));
        return;
    }
    Operand<T> a, w;
    a.data = x, a.rs = K, a.cs = 1;
    w.data = W, w.rs = 1, w.cs = K;
    EpilogueAffine<T> affine;
    affine.scale = scale, affine.shift = shift;
    gemm_ex<T>(y, N, a, w, b, M, N, K, T(1), T(0), act, T(negative_slope), 0, nullptr, affine);
}

namespace {

// db[0..W) += sum over i of dy[i*ld + 0..W), the W sums held in registers, each over i in order.
template <int W, typename T>
void column_sums_fixed(T* db, const T* dy, int64_t M, int64_t ld) {
    T sum[W];
    for (int j = 0; j < W; ++j) sum[j] = db[j];
    for (int64_t i = 0; i < M; ++i)
        for (int j = 0; j < W; ++j) sum[j] += dy[i * ld + j];
    for (int j = 0; j < W; ++j) db[j] = sum[j];
}

// The same for a width n <= W, chosen among the instantiations 1..W.
template <int W, typename T>
void column_sums_upto(T* db, const T* dy, int64_t M, int64_t ld, int64_t n) {
    if constexpr (W > 1)
        if (n < W) return column_sums_upto<W - 1>(db, dy, M, ld, n);
    column_sums_fixed<W>(db, dy, M, ld);
}

}  // namespace

template <typename T>
void column_sums(T* db, const T* dy, int64_t M, int64_t N) {
    if (M == 0 || N == 0) return;  // nothing to add (and no need to walk 2**40 empty rows)
    // Each db[j] is summed over i = 0..M-1 in order, however the columns are split.
    if (N < 16) {  // too narrow for the row-wise loop to vectorize: up to 8 sums in registers
        for (int64_t j = 0; j < N; j += 8)
            column_sums_upto<8>(db + j, dy + j, M, N, std::min<int64_t>(8, N - j));
        return;
    }
    parallel_for(N, double(M), 1 << 16, [&](int64_t j0, int64_t j1) {  // split columns, never rows
        for (int64_t i = 0; i < M; ++i) {
            const T* row = dy + i * N;
            for (int64_t j = j0; j < j1; ++j) db[j] += row[j];
        }
    });
}

template <typename T>
void dense_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, int64_t M, int64_t K,
                    int64_t N, bool accumulate) {
    // dx (M, K) = dy (M, N) @ W (N, K)
    if (dx) gemm<T>(dx, K, dy, N, 1, W, K, 1, nullptr, M, K, N, T(1), T(0), Activation::none, T(0));
    // dW (N, K) += dy.T (N, M) @ x (M, K): A(i, p) = dy[p*N + i]
    if (dW)
        gemm<T>(dW, K, dy, 1, N, x, K, 1, nullptr, N, K, M, T(1), accumulate ? T(1) : T(0),
                Activation::none, T(0));
    if (db) {
        if (!accumulate) std::fill(db, db + N, T(0));
        column_sums(db, dy, M, N);
    }
}

template void dense_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, Activation, double, const float*, const float*);
template void dense_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t, int64_t, Activation, double, const double*, const double*);
template void dense_backward<float>(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void dense_backward<double>(double*, double*, double*, const double*, const double*, const double*, int64_t, int64_t, int64_t, bool);
template void column_sums<float>(float*, const float*, int64_t, int64_t);
template void column_sums<double>(double*, const double*, int64_t, int64_t);

}  // namespace lamina
