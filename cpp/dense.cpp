// Dense layer forward and backward: three GEMM calls whose transposes the engine's packing absorbs,
// plus the bias gradient.
#include "dense.h"

#include <algorithm>

#include "parallel.h"

namespace lamina {

template <typename T>
void dense_forward(T* y, const T* x, const T* W, const T* b, int64_t M, int64_t K, int64_t N,
                   Activation act) {
    // B = W.T: B(p, j) = W[j*K + p], so row stride 1 and column stride K.
    gemm<T>(y, N, x, K, 1, W, 1, K, b, M, N, K, T(1), T(0), act);
}

template <typename T>
void column_sums(T* db, const T* dy, int64_t M, int64_t N) {
    if (M == 0 || N == 0) return;  // nothing to add (and no need to walk 2**40 empty rows)
    // Split columns, never rows: each db[j] is summed over i = 0..M-1 in order.
    if (N < 16) {  // too narrow for the row-wise loop to vectorize: one column at a time
        for (int64_t j = 0; j < N; ++j) {
            T sum = db[j];
            for (int64_t i = 0; i < M; ++i) sum += dy[i * N + j];
            db[j] = sum;
        }
        return;
    }
    parallel_for(N, double(M), 1 << 16, [&](int64_t j0, int64_t j1) {
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
    if (dx) gemm<T>(dx, K, dy, N, 1, W, K, 1, nullptr, M, K, N, T(1), T(0), Activation::none);
    // dW (N, K) += dy.T (N, M) @ x (M, K): A(i, p) = dy[p*N + i]
    gemm<T>(dW, K, dy, 1, N, x, K, 1, nullptr, N, K, M, T(1), accumulate ? T(1) : T(0), Activation::none);
    if (db) {
        if (!accumulate) std::fill(db, db + N, T(0));
        column_sums(db, dy, M, N);
    }
}

template void dense_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, Activation);
template void dense_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t, int64_t, Activation);
template void dense_backward<float>(float*, float*, float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void dense_backward<double>(double*, double*, double*, const double*, const double*, const double*, int64_t, int64_t, int64_t, bool);
template void column_sums<float>(float*, const float*, int64_t, int64_t);
template void column_sums<double>(double*, const double*, int64_t, int64_t);

}  // namespace lamina
