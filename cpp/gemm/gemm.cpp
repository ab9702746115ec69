// The GEMM engine: BLIS's five loops around a micro-kernel.
//   jc: NC-wide column blocks of B and C     pc: KC-deep slices of the sum (packed Bp shared by all threads)
//   ic: MC-tall row blocks of A and C         (packed Ap shared by all threads)
//   jr, ir: NR x MR register tiles, split among threads.
// Threads split only jr and ir (N and M), never pc (K): every element of C is summed in the same
// order whatever the thread count, so results are bitwise identical for 1, 2 or N threads.
// The epilogue (bias, activation) is applied by the write-back of the last pc slice.
#include "gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "activations.h"
#include "gemm/kernel.h"
#include "gemm/pack.h"
#include "parallel.h"

namespace lamina {

namespace {

// Below this many multiply-adds per extra thread, a GEMM stays single-threaded.
constexpr double kMinWorkPerThread = 1 << 17;

// A grow-only, 64-byte aligned scratch buffer, one per calling thread, so the steady state of a
// training loop allocates nothing and concurrent Python threads never share packing space.
struct AlignedBuffer {
    void* data = nullptr;
    std::size_t bytes = 0;
    ~AlignedBuffer() { std::free(data); }
    void* get(std::size_t need) {
        if (need > bytes) {
            std::free(data);
            bytes = (need + 63) / 64 * 64;
            data = std::aligned_alloc(64, bytes);
            if (!data) {
                bytes = 0;
                throw std::bad_alloc();
            }
        }
        return data;
    }
};

thread_local AlignedBuffer a_buffer, b_buffer;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename T>
void apply_activation_tile(T* C, int64_t ldc, int64_t m, int64_t n, Activation act) {
    for (int64_t i = 0; i < m; ++i) {
        T* c = C + i * ldc;
        if (act == Activation::sigmoid)
            for (int64_t j = 0; j < n; ++j) c[j] = sigmoid_scalar(c[j]);
        else
            for (int64_t j = 0; j < n; ++j) c[j] = std::tanh(c[j]);
    }
}

// K == 0: the product is empty, C = act(beta*C + bias).
template <typename T>
void epilogue_only(T* C, int64_t ldc, const T* bias, int64_t M, int64_t N, T beta, Activation act) {
    for (int64_t i = 0; i < M; ++i) {
        T* c = C + i * ldc;
        for (int64_t j = 0; j < N; ++j) {
            T v = beta != T(0) ? beta * c[j] : T(0);
            if (bias) v += bias[j];
            if (act == Activation::relu) v = v < T(0) ? T(0) : v;
            c[j] = v;
        }
        if (act == Activation::sigmoid || act == Activation::tanh)
            apply_activation_tile(c, ldc, 1, N, act);
    }
}

template <typename T>
struct Job {
    T* C; int64_t ldc;
    const T* A; int64_t rsa, csa;
    const T* B; int64_t rsb, csb;
    const T* bias;
    int64_t M, N, K;
    T alpha, beta;
    Activation act;
};

// Runs inside an OpenMP parallel region (or alone): the `omp for` loops below share out packing
// and tiles; their implicit barriers order pack-before-use and use-before-repack.
template <typename T>
void blocked_loops(const Job<T>& job, const Blocking<T>& bl, T* Ap, T* Bp) {
    const int64_t MR = bl.MR, NR = bl.NR;
    for (int64_t jc = 0; jc < job.N; jc += bl.NC) {
        const int64_t nc = std::min(bl.NC, job.N - jc);
        const int64_t n_panels = ceil_div(nc, NR);
        for (int64_t pc = 0; pc < job.K; pc += bl.KC) {
            const int64_t kc = std::min(bl.KC, job.K - pc);
            const bool last = pc + kc == job.K;

#pragma omp for schedule(static)
            for (int64_t jp = 0; jp < n_panels; ++jp) {
                const int64_t j = jc + jp * NR;
                pack_b_panel(Bp + jp * NR * kc, job.B + pc * job.rsb + j * job.csb, job.rsb, job.csb,
                             kc, std::min(NR, job.N - j), bl.NR);
            }

            Epilogue<T> ep{job.alpha, pc == 0 ? job.beta : T(1), nullptr,
                           last && job.act == Activation::relu};
            const bool late_activation =
                last && (job.act == Activation::sigmoid || job.act == Activation::tanh);

            for (int64_t ic = 0; ic < job.M; ic += bl.MC) {
                const int64_t mc = std::min(bl.MC, job.M - ic);
                const int64_t m_panels = ceil_div(mc, MR);

#pragma omp for schedule(static)
                for (int64_t ip = 0; ip < m_panels; ++ip) {
                    const int64_t i = ic + ip * MR;
                    pack_a_panel(Ap + ip * MR * kc, job.A + i * job.rsa + pc * job.csa, job.rsa,
                                 job.csa, std::min(MR, job.M - i), kc, bl.MR);
                }

#pragma omp for collapse(2) schedule(static)
                for (int64_t jp = 0; jp < n_panels; ++jp) {
                    for (int64_t ip = 0; ip < m_panels; ++ip) {
                        const int64_t i = ic + ip * MR, j = jc + jp * NR;
                        const int64_t m = std::min(MR, job.M - i), n = std::min(NR, job.N - j);
                        Epilogue<T> tile_ep = ep;
                        tile_ep.bias = (last && job.bias) ? job.bias + j : nullptr;
                        T* c = job.C + i * job.ldc + j;
                        bl.kernel(kc, Ap + ip * MR * kc, Bp + jp * NR * kc, c, job.ldc, m, n, tile_ep);
                        if (late_activation) apply_activation_tile(c, job.ldc, m, n, job.act);
                    }
                }
            }
        }
    }
}

}  // namespace

template <typename T>
void gemm(T* C, int64_t ldc, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, const T* bias, int64_t M, int64_t N, int64_t K, T alpha, T beta,
          Activation act) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        epilogue_only(C, ldc, bias, M, N, beta, act);
        return;
    }
    const Blocking<T>& bl = active_blocking<T>();
    const int64_t kc = std::min(bl.KC, K);
    const int64_t mc = std::min(bl.MC, ceil_div(M, bl.MR) * bl.MR);
    const int64_t nc = std::min(bl.NC, ceil_div(N, bl.NR) * bl.NR);
    T* Ap = static_cast<T*>(a_buffer.get(sizeof(T) * mc * kc));
    T* Bp = static_cast<T*>(b_buffer.get(sizeof(T) * kc * nc));

    const Job<T> job{C, ldc, A, rsa, csa, B, rsb, csb, bias, M, N, K, alpha, beta, act};
    const int threads = threads_for(double(M) * double(N) * double(K), kMinWorkPerThread);
#pragma omp parallel num_threads(threads) if (threads > 1)
    blocked_loops(job, bl, Ap, Bp);
}

template void gemm<float>(float*, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                          int64_t, const float*, int64_t, int64_t, int64_t, float, float, Activation);
template void gemm<double>(double*, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, const double*, int64_t, int64_t, int64_t, double, double, Activation);

}  // namespace lamina
