// Recurrent layers and embedding (the math and layouts: recurrent.h). Each cell is a forward and
// a backward function of the same shape: the input projection of all steps as one GEMM, the time
// loop (a recurrent GEMM, then the cell's arithmetic over the step's rows), and after backward's
// loop the products merged across time (weight_gradients).
#include "kernels/recurrent.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/activation.h"
#include "core/parallel.h"
#include "gemm/gemm.h"
#include "gemm/kernel.h"
#include "vec/sigmoid_tanh_block.h"

namespace lamina {

namespace {

constexpr double kMinWorkPerThread = 1 << 15;  // element operations
constexpr double kExpCost = 8;                 // an exp or tanh, in element operations

// C (M, n) = act(A (M, K) @ W^T + bias + beta * C), W (n, K) with rows ldw apart, A rows lda
// apart, C rows ldc apart: the input projection of every step at once.
template <typename T>
void product_wt(T* C, int64_t ldc, const T* A, int64_t lda, const T* W, int64_t ldw, const T* bias,
                int64_t M, int64_t n, int64_t K, T beta, Activation act = Activation::none) {
    gemm<T>(C, ldc, A, lda, 1, W, 1, ldw, bias, M, n, K, T(1), beta, act, T(0));
}

// C (M, n) = A (M, K) @ W (K, n) + beta * C, W rows ldw apart: backward's products through W.
template <typename T>
void product_w(T* C, int64_t ldc, const T* A, int64_t lda, const T* W, int64_t ldw, int64_t M,
               int64_t n, int64_t K, T beta) {
    gemm<T>(C, ldc, A, lda, 1, W, ldw, 1, nullptr, M, n, K, T(1), beta, Activation::none, T(0));
}

// dW (rows, n) += A^T @ P: A (K, rows) with rows lda apart, P (K, n) with rows ldp apart.
template <typename T>
void product_at(T* dW, int64_t lddw, const T* A, int64_t lda, const T* P, int64_t ldp,
                int64_t rows, int64_t n, int64_t K) {
    if (K == 0) return;
    gemm<T>(dW, lddw, A, 1, lda, P, ldp, 1, nullptr, rows, n, K, T(1), T(1), Activation::none, T(0));
}

// db (n,) += the column sums of A (M, n), rows lda apart: each column summed in row order,
// threads split the columns.
template <typename T>
void column_sums(T* db, const T* A, int64_t lda, int64_t M, int64_t n) {
    parallel_for(n, double(M), kMinWorkPerThread, [&](int64_t j0, int64_t j1) {
        for (int64_t i = 0; i < M; ++i) {
            const T* row = A + i * lda;
            for (int64_t j = j0; j < j1; ++j) db[j] += row[j];
        }
    });
}

// body(n) for every batch row n of one step, the rows split between threads; `cost` is one row's
// element operations.
template <typename Body>
void for_each_row(int64_t N, double cost, Body&& body) {
    parallel_for(N, cost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t n = lo; n < hi; ++n) body(n);
    });
}

// dW (rows, H) += A[:, 0..rows)^T @ h_prev over all T*N rows, h_prev = h0, y[0], ..., y[T-2]: the
// steps after the first read y in place (its first (T-1)*N rows), the first reads h0 (zeros when
// null: nothing to add). A is (T*N, >= rows), rows lda apart.
template <typename T>
void grad_from_states(T* dW, const T* A, int64_t lda, int64_t rows, const T* h0, const T* y,
                      const RecurrentShape& s) {
    product_at(dW, s.H, A + s.N * lda, lda, y, s.H, rows, s.H, (s.T - 1) * s.N);
    if (h0) product_at(dW, s.H, A, lda, h0, s.H, rows, s.H, s.N);
}

// The gradients merged across time, once backward's loop has every step's gate gradients dA_x
// (of the input projection) and dA_h (of the recurrent one), (T*N, G*H) each (the same array but
// for GRU):
//   dx = dA_x @ W_ih,  dW_ih += dA_x^T @ x,  db_ih += sum dA_x,  db_hh += sum dA_h,
//   dW_hh[0..hh_rows) += dA_h[:, 0..hh_rows)^T @ h_prev.
// The rows of dW_hh from hh_rows on are the caller's (GRU without reset_after).
template <typename T>
void weight_gradients(T* dx, T* dW_ih, T* dW_hh, T* db_ih, T* db_hh, const T* dA_x, const T* dA_h,
                      const T* x, const T* h0, const T* W_ih, const T* y, const RecurrentShape& s,
                      int64_t G, int64_t hh_rows) {
    const int64_t M = s.T * s.N, GH = G * s.H;
    if (dx) product_w(dx, s.I, dA_x, GH, W_ih, s.I, M, s.I, GH, T(0));
    if (dW_ih) product_at(dW_ih, s.I, dA_x, GH, x, s.I, GH, s.I, M);
    if (dW_hh) grad_from_states(dW_hh, dA_h, GH, hh_rows, h0, y, s);
    if (db_ih) column_sums(db_ih, dA_x, GH, M, GH);
    if (db_hh) column_sums(db_hh, dA_h, GH, M, GH);
}

template <typename T>
void copy_state(T* dst, const T* src, int64_t n) {
    if (!dst) return;
    if (src)
        std::memcpy(dst, src, sizeof(T) * n);
    else
        std::fill(dst, dst + n, T(0));
}

// ---- the gate nonlinearities over runs of values ----------------------------------------------
// float: the vectorized blocks of vec/sigmoid_tanh_block.h (one copy per ISA); double: libm.

inline void sigmoid_run(float* y, const float* a, int64_t n) { sigmoid_block(y, a, n); }
inline void tanh_run(float* y, const float* a, int64_t n) { tanh_block(y, a, n); }

inline void sigmoid_run(double* y, const double* a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) y[j] = sigmoid_scalar(a[j]);
}
inline void tanh_run(double* y, const double* a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) y[j] = std::tanh(a[j]);
}

// n values of scratch for the calling thread (a row's tanh c_t in backward).
template <typename T>
T* row_scratch(int64_t n) {
    thread_local std::vector<T> buffer;
    if (int64_t(buffer.size()) < n) buffer.resize(n);
    return buffer.data();
}

// A recurrent weight as the B (K, n) of the per-step products, B(p, j) = B[p*rsb + j*csb],
// copied once per call into column panels as wide as the micro-kernel's tile (NR), each (K, NR)
// row-major. The micro-kernel reads such a panel in place, so no step packs the weight again
// (packing W_hh at every step was a fifth of an LSTM's time).
template <typename T>
class Panels {
  public:
    Panels(const T* B, int64_t rsb, int64_t csb, int64_t K, int64_t n)
        : K_(K), n_(n), width_(active_blocking<T>().NR),
          data_(((n + width_ - 1) / width_) * width_ * K, T(0)) {
        for (int64_t j = 0; j < n; ++j) {
            T* panel = data_.data() + (j / width_) * K * width_ + j % width_;
            for (int64_t p = 0; p < K; ++p) panel[p * width_] = B[p * rsb + j * csb];
        }
    }

    // C (M, n) = act(A (M, K) @ B + bias + beta * C), A rows lda apart: one product per panel,
    // the panels split between threads (each panel's sums are the same on any thread).
    void product(T* C, int64_t ldc, const T* A, int64_t lda, const T* bias, int64_t M, T beta,
                 Activation act = Activation::none) const {
        const int64_t panels = (n_ + width_ - 1) / width_;
        parallel_for(panels, double(M) * double(K_) * double(width_), kMinProductWork,
                     [&](int64_t q0, int64_t q1) {
                         for (int64_t q = q0; q < q1; ++q) {
                             const int64_t j0 = q * width_, nq = std::min(width_, n_ - j0);
                             const Operand<T> a{A, lda, 1, nullptr};
                             const Operand<T> b{data_.data() + q * K_ * width_, width_, 1, nullptr};
                             gemm_ex<T>(C + j0, ldc, a, b, bias ? bias + j0 : nullptr, M, nq, K_,
                                        T(1), beta, act, T(0), 1);
                         }
                     });
    }

  private:
    static constexpr double kMinProductWork = 1 << 17;  // multiply-adds per thread
    int64_t K_, n_, width_;
    std::vector<T> data_;
};

}  // namespace

// ---- Elman RNN -------------------------------------------------------------------------------

template <typename T>
void rnn_forward(T* y, T* h_n, const T* x, const T* h0, const T* W_ih, const T* W_hh,
                 const T* b_ih, const T* b_hh, const RecurrentShape& s, RnnActivation act) {
    const int64_t N = s.N, H = s.H;
    const Activation a = act == RnnActivation::tanh ? Activation::tanh : Activation::relu;
    product_wt(y, H, x, s.I, W_ih, s.I, b_ih, s.T * N, H, s.I, T(0));
    const Panels<T> U(W_hh, 1, H, H, H);  // W_hh^T (H, H)
    // y_t = act(y_t + h_{t-1} W_hh^T + b_hh): the whole cell in the recurrent GEMM's epilogue.
    for (int64_t t = 0; t < s.T; ++t) {
        T* yt = y + t * N * H;
        if (t > 0 || h0)
            U.product(yt, H, t > 0 ? yt - N * H : h0, H, b_hh, N, T(1), a);
        else  // h_{-1} = 0: only the bias joins the input projection
            for_each_row(N, H * kExpCost, [&](int64_t n) {
                T* row = yt + n * H;
                for (int64_t j = 0; j < H; ++j) row[j] += b_hh ? b_hh[j] : T(0);
                activate(row, row, H, a, T(0));
            });
    }
    if (h_n) std::memcpy(h_n, y + (s.T - 1) * N * H, sizeof(T) * N * H);
}

template <typename T>
void rnn_backward(T* dx, T* dh0, T* dW_ih, T* dW_hh, T* db_ih, T* db_hh, const T* dy,
                  const T* dh_n, const T* x, const T* h0, const T* W_ih, const T* W_hh, const T* y,
                  const RecurrentShape& s, RnnActivation act) {
    const int64_t N = s.N, H = s.H;
    std::vector<T> dA(s.T * N * H), dh(N * H);
    copy_state(dh.data(), dh_n, N * H);
    const Panels<T> V(W_hh, H, 1, H, H);  // W_hh (H, H)
    for (int64_t t = s.T - 1; t >= 0; --t) {
        T* da = dA.data() + t * N * H;
        const T* yt = y + t * N * H;
        const T* dyt = dy ? dy + t * N * H : nullptr;
        // da = (dy_t + dh) * act'(h_t), act' from the output: 1 - h^2, or h > 0
        for_each_row(N, 3.0 * H, [&](int64_t n) {
            for (int64_t j = n * H; j < (n + 1) * H; ++j) {
                const T g = (dyt ? dyt[j] : T(0)) + dh[j];
                da[j] = act == RnnActivation::tanh ? g * (T(1) - yt[j] * yt[j]) : (yt[j] > T(0) ? g : T(0));
            }
        });
        V.product(dh.data(), H, da, H, nullptr, N, T(0));  // dh_{t-1} = da W_hh
    }
    copy_state(dh0, dh.data(), N * H);
    weight_gradients(dx, dW_ih, dW_hh, db_ih, db_hh, dA.data(), dA.data(), x, h0, W_ih, y, s, 1, H);
}

// ---- LSTM ------------------------------------------------------------------------------------

template <typename T>
void lstm_forward(T* y, T* h_n, T* c_n, T* workspace, const T* x, const T* h0, const T* c0,
                  const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                  const RecurrentShape& s) {
    const int64_t N = s.N, H = s.H, ld = 5 * H;  // workspace row: i, f, g, o, c
    // The gate pre-activations of every step: a_x = x W_ih^T + b_ih, in the workspace.
    product_wt(workspace, ld, x, s.I, W_ih, s.I, b_ih, s.T * N, 4 * H, s.I, T(0));
    const Panels<T> U(W_hh, 1, H, H, 4 * H);  // W_hh^T (H, 4H)
    for (int64_t t = 0; t < s.T; ++t) {
        T* wt = workspace + t * N * ld;
        const T* h_prev = t > 0 ? y + (t - 1) * N * H : h0;
        // a = a_x + h_{t-1} W_hh^T + b_hh, added in place (h_{-1} = 0: the bias alone)
        if (h_prev)
            U.product(wt, ld, h_prev, H, b_hh, N, T(1));
        else if (b_hh)
            for (int64_t n = 0; n < N; ++n)
                for (int64_t j = 0; j < 4 * H; ++j) wt[n * ld + j] += b_hh[j];
        T* yt = y + t * N * H;
        for_each_row(N, 5 * H * kExpCost, [&](int64_t n) {
            T* gates = wt + n * ld;
            T *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H, *c = gates + 4 * H;
            const T* c_prev = t > 0 ? wt - N * ld + n * ld + 4 * H : (c0 ? c0 + n * H : nullptr);
            T* h = yt + n * H;
            sigmoid_run(i, i, 2 * H);  // i and f
            tanh_run(g, g, H);
            sigmoid_run(o, o, H);
            if (c_prev)
                for (int64_t j = 0; j < H; ++j) c[j] = f[j] * c_prev[j] + i[j] * g[j];
            else
                for (int64_t j = 0; j < H; ++j) c[j] = i[j] * g[j];
            tanh_run(h, c, H);
            for (int64_t j = 0; j < H; ++j) h[j] *= o[j];
        });
    }
    if (h_n) std::memcpy(h_n, y + (s.T - 1) * N * H, sizeof(T) * N * H);
    if (c_n)
        for (int64_t n = 0; n < N; ++n)
            std::memcpy(c_n + n * H, workspace + ((s.T - 1) * N + n) * ld + 4 * H, sizeof(T) * H);
}

template <typename T>
void lstm_backward(T* dx, T* dh0, T* dc0, T* dW_ih, T* dW_hh, T* db_ih, T* db_hh, const T* dy,
                   const T* dh_n, const T* dc_n, const T* x, const T* h0, const T* c0,
                   const T* W_ih, const T* W_hh, const T* y, const T* workspace,
                   const RecurrentShape& s) {
    const int64_t N = s.N, H = s.H, ld = 5 * H, GH = 4 * H;
    std::vector<T> dA(s.T * N * GH), dh(N * H), dc(N * H);
    copy_state(dh.data(), dh_n, N * H);
    copy_state(dc.data(), dc_n, N * H);
    const Panels<T> V(W_hh, H, 1, GH, H);  // W_hh (4H, H)
    for (int64_t t = s.T - 1; t >= 0; --t) {
        const T* wt = workspace + t * N * ld;
        const T* dyt = dy ? dy + t * N * H : nullptr;
        T* da_t = dA.data() + t * N * GH;
        for_each_row(N, 20.0 * H, [&](int64_t n) {
            const T* gates = wt + n * ld;
            const T *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H, *c = gates + 4 * H;
            const T* c_prev = t > 0 ? wt - N * ld + n * ld + 4 * H : (c0 ? c0 + n * H : nullptr);
            const T* dy_row = dyt ? dyt + n * H : nullptr;
            T* da = da_t + n * GH;
            T *dh_row = dh.data() + n * H, *dc_row = dc.data() + n * H;
            T* tc = row_scratch<T>(H);
            tanh_run(tc, c, H);
            if (dy_row)
                for (int64_t j = 0; j < H; ++j) dh_row[j] += dy_row[j];
            for (int64_t j = 0; j < H; ++j) {
                const T dh_j = dh_row[j];
                const T dc_j = dc_row[j] + dh_j * o[j] * (T(1) - tc[j] * tc[j]);
                da[j] = dc_j * g[j] * i[j] * (T(1) - i[j]);
                da[2 * H + j] = dc_j * i[j] * (T(1) - g[j] * g[j]);
                da[3 * H + j] = dh_j * tc[j] * o[j] * (T(1) - o[j]);
                dc_row[j] = dc_j;
            }
            if (c_prev)
                for (int64_t j = 0; j < H; ++j) da[H + j] = dc_row[j] * c_prev[j] * f[j] * (T(1) - f[j]);
            else
                for (int64_t j = 0; j < H; ++j) da[H + j] = T(0);
            for (int64_t j = 0; j < H; ++j) dc_row[j] *= f[j];  // dc_{t-1}
        });
        V.product(dh.data(), H, da_t, GH, nullptr, N, T(0));  // dh_{t-1} = da W_hh
    }
    copy_state(dh0, dh.data(), N * H);
    copy_state(dc0, dc.data(), N * H);
    weight_gradients(dx, dW_ih, dW_hh, db_ih, db_hh, dA.data(), dA.data(), x, h0, W_ih, y, s, 4, GH);
}

// ---- GRU -------------------------------------------------------------------------------------

template <typename T>
void gru_forward(T* y, T* h_n, T* workspace, const T* x, const T* h0, const T* W_ih,
                 const T* W_hh, const T* b_ih, const T* b_hh, const RecurrentShape& s,
                 bool reset_after) {
    const int64_t N = s.N, H = s.H, ld = 4 * H;  // workspace row: r, z, n, kept
    const T* b_hn = b_hh ? b_hh + 2 * H : nullptr;
    product_wt(workspace, ld, x, s.I, W_ih, s.I, b_ih, s.T * N, 3 * H, s.I, T(0));
    std::vector<T> zeros;
    if (!h0) {
        zeros.assign(N * H, T(0));
        h0 = zeros.data();
    }
    // W_hh^T (H, 3H); without reset_after its r, z columns (H, 2H) and n columns (H, H) apart
    const Panels<T> U(W_hh, 1, H, H, reset_after ? 3 * H : 2 * H);
    const Panels<T> Un(W_hh + 2 * H * H, 1, H, H, reset_after ? 0 : H);
    std::vector<T> a_h(reset_after ? N * 3 * H : 0);
    for (int64_t t = 0; t < s.T; ++t) {
        T* wt = workspace + t * N * ld;
        const T* h_prev = t > 0 ? y + (t - 1) * N * H : h0;
        T* yt = y + t * N * H;
        if (reset_after) {
            // a_h = h_{t-1} W_hh^T + b_hh: r and z add it to a_x, n keeps its part apart
            U.product(a_h.data(), 3 * H, h_prev, H, b_hh, N, T(0));
            for_each_row(N, 4 * H * kExpCost, [&](int64_t n) {
                T* row = wt + n * ld;  // r, z, n, kept
                const T* ah = a_h.data() + n * 3 * H;
                for (int64_t j = 0; j < 2 * H; ++j) row[j] += ah[j];
                sigmoid_run(row, row, 2 * H);
                for (int64_t j = 0; j < H; ++j) {
                    row[3 * H + j] = ah[2 * H + j];
                    row[2 * H + j] += row[j] * ah[2 * H + j];
                }
                tanh_run(row + 2 * H, row + 2 * H, H);
            });
        } else {
            // r, z from a_x + h_{t-1} W_{hr,hz}^T + b; then n = tanh(a_x,n + (r h) W_hn^T + b_hn)
            U.product(wt, ld, h_prev, H, b_hh, N, T(1));
            for_each_row(N, 3 * H * kExpCost, [&](int64_t n) {
                T* row = wt + n * ld;
                const T* hp = h_prev + n * H;
                sigmoid_run(row, row, 2 * H);
                for (int64_t j = 0; j < H; ++j) row[3 * H + j] = row[j] * hp[j];
            });
            Un.product(wt + 2 * H, ld, wt + 3 * H, ld, b_hn, N, T(1), Activation::tanh);
        }
        // h_t = (1 - z) n + z h_{t-1}
        for_each_row(N, 3.0 * H, [&](int64_t n) {
            const T* row = wt + n * ld;
            const T* hp = h_prev + n * H;
            T* h = yt + n * H;
            for (int64_t j = 0; j < H; ++j) {
                const T z = row[H + j];
                h[j] = (T(1) - z) * row[2 * H + j] + z * hp[j];
            }
        });
    }
    if (h_n) std::memcpy(h_n, y + (s.T - 1) * N * H, sizeof(T) * N * H);
}

template <typename T>
void gru_backward(T* dx, T* dh0, T* dW_ih, T* dW_hh, T* db_ih, T* db_hh, const T* dy,
                  const T* dh_n, const T* x, const T* h0, const T* W_ih, const T* W_hh, const T* y,
                  const T* workspace, const RecurrentShape& s, bool reset_after) {
    const int64_t N = s.N, H = s.H, ld = 4 * H, GH = 3 * H;
    // dA_x: the gradients of a_x (r, z, n); dA_h those of the recurrent product's output, which
    // differ in the n block with reset_after (da_n r) and are dA_x itself without.
    std::vector<T> dA_x(s.T * N * GH), dA_h(reset_after ? s.T * N * GH : 0);
    std::vector<T> dh(N * H), dh_prev(N * H), drh(reset_after ? 0 : N * H);
    copy_state(dh.data(), dh_n, N * H);
    // W_hh (3H, H); without reset_after its r, z rows (2H, H) and n rows (H, H) apart
    const Panels<T> V(W_hh, H, 1, reset_after ? GH : 2 * H, H);
    const Panels<T> Vn(W_hh + 2 * H * H, H, 1, H, reset_after ? 0 : H);
    std::vector<T> zeros;
    const T* h0_or_zeros = h0;
    if (!h0) {
        zeros.assign(N * H, T(0));
        h0_or_zeros = zeros.data();
    }
    for (int64_t t = s.T - 1; t >= 0; --t) {
        const T* wt = workspace + t * N * ld;
        const T* h_prev = t > 0 ? y + (t - 1) * N * H : h0_or_zeros;
        const T* dyt = dy ? dy + t * N * H : nullptr;
        T* dax = dA_x.data() + t * N * GH;
        if (reset_after) {
            T* dah = dA_h.data() + t * N * GH;
            for_each_row(N, 16.0 * H, [&](int64_t n) {
                const T* row = wt + n * ld;
                const T* hp = h_prev + n * H;
                T *ax = dax + n * GH, *ah = dah + n * GH;
                for (int64_t j = 0; j < H; ++j) {
                    const T r = row[j], z = row[H + j], nn = row[2 * H + j], a_hn = row[3 * H + j];
                    const T g = (dyt ? dyt[n * H + j] : T(0)) + dh[n * H + j];
                    const T dan = g * (T(1) - z) * (T(1) - nn * nn);
                    const T daz = g * (hp[j] - nn) * z * (T(1) - z);
                    const T dar = dan * a_hn * r * (T(1) - r);
                    ax[j] = ah[j] = dar;
                    ax[H + j] = ah[H + j] = daz;
                    ax[2 * H + j] = dan;
                    ah[2 * H + j] = dan * r;
                    dh_prev[n * H + j] = g * z;
                }
            });
            V.product(dh_prev.data(), H, dah, GH, nullptr, N, T(1));  // += dA_h W_hh
        } else {
            for_each_row(N, 10.0 * H, [&](int64_t n) {
                const T* row = wt + n * ld;
                const T* hp = h_prev + n * H;
                T* ax = dax + n * GH;
                for (int64_t j = 0; j < H; ++j) {
                    const T z = row[H + j], nn = row[2 * H + j];
                    const T g = (dyt ? dyt[n * H + j] : T(0)) + dh[n * H + j];
                    ax[H + j] = g * (hp[j] - nn) * z * (T(1) - z);
                    ax[2 * H + j] = g * (T(1) - z) * (T(1) - nn * nn);
                    dh_prev[n * H + j] = g * z;
                }
            });
            // d(r h) = da_n W_hn; then da_r and d(r h)'s share of dh_{t-1}
            Vn.product(drh.data(), H, dax + 2 * H, GH, nullptr, N, T(0));
            for_each_row(N, 6.0 * H, [&](int64_t n) {
                const T* row = wt + n * ld;
                const T* hp = h_prev + n * H;
                const T* d = drh.data() + n * H;
                T* ax = dax + n * GH;
                for (int64_t j = 0; j < H; ++j) {
                    const T r = row[j];
                    ax[j] = d[j] * hp[j] * r * (T(1) - r);
                    dh_prev[n * H + j] += d[j] * r;
                }
            });
            V.product(dh_prev.data(), H, dax, GH, nullptr, N, T(1));  // += dA_rz W_hrz
        }
        std::swap(dh, dh_prev);
    }
    copy_state(dh0, dh.data(), N * H);
    const T* dah = reset_after ? dA_h.data() : dA_x.data();
    weight_gradients(dx, dW_ih, dW_hh, db_ih, db_hh, dA_x.data(), dah, x, h0, W_ih, y, s, 3,
                     reset_after ? GH : 2 * H);
    if (!reset_after && dW_hh)  // the n rows multiply r h_{t-1}, saved in the workspace
        product_at(dW_hh + 2 * H * H, H, dA_x.data() + 2 * H, GH, workspace + 3 * H, ld, H, H,
                   s.T * N);
}

// ---- embedding -------------------------------------------------------------------------------

template <typename T>
void embedding_forward(T* y, const int64_t* indices, const T* W, int64_t count, int64_t D) {
    parallel_for(count, double(D), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j) std::memcpy(y + j * D, W + indices[j] * D, sizeof(T) * D);
    });
}

template <typename T>
void embedding_backward(T* dW, const T* dy, const int64_t* indices, int64_t count, int64_t D,
                        int64_t padding_idx) {
    // Threads split the columns; each walks every index in order, so a row of dW that several
    // indices share sums its gradients in index order for any thread count.
    parallel_for(D, double(count), kMinWorkPerThread, [&](int64_t d0, int64_t d1) {
        for (int64_t j = 0; j < count; ++j) {
            const int64_t k = indices[j];
            if (k == padding_idx) continue;
            T* row = dW + k * D;
            const T* g = dy + j * D;
            for (int64_t d = d0; d < d1; ++d) row[d] += g[d];
        }
    });
}

#define LAMINA_INSTANTIATE_RECURRENT(T)                                                          \
    template void rnn_forward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,       \
                                 const T*, const RecurrentShape&, RnnActivation);                \
    template void rnn_backward<T>(T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,          \
                                  const T*, const T*, const T*, const T*, const RecurrentShape&, \
                                  RnnActivation);                                                \
    template void lstm_forward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                  const T*, const T*, const T*, const RecurrentShape&);          \
    template void lstm_backward<T>(T*, T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,     \
                                   const T*, const T*, const T*, const T*, const T*, const T*,   \
                                   const T*, const RecurrentShape&);                             \
    template void gru_forward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,   \
                                 const T*, const RecurrentShape&, bool);                         \
    template void gru_backward<T>(T*, T*, T*, T*, T*, T*, const T*, const T*, const T*,          \
                                  const T*, const T*, const T*, const T*, const T*,              \
                                  const RecurrentShape&, bool);                                  \
    template void embedding_forward<T>(T*, const int64_t*, const T*, int64_t, int64_t);          \
    template void embedding_backward<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);

LAMINA_INSTANTIATE_RECURRENT(float)
LAMINA_INSTANTIATE_RECURRENT(double)

}  // namespace lamina
