// The GEMM engine: BLIS's five loops around a micro-kernel.
//   jc: NC-wide column blocks of B and C      pc: KC-deep slices of the sum, packed into Bp
//   ic: MC-tall row blocks of A and C, packed into Ap (sized for L2)
//   jr, ir: NR x MR register tiles, one micro-kernel call each (a Bp micro-panel stays in L1);
//           a tile at most NR/2 wide with A in place takes 2*MR rows
// Operands too small to repay the copy are read in place instead (decide_packing): the
// micro-kernel takes strides, so a packed panel and the operand itself look alike to it.
// Threads split C into bands along M or N (never K) and run the loops independently: every
// element of C is summed in the same order whatever the thread count, so results are bitwise
// identical for 1, 2 or N threads, and no thread ever waits on another mid-call (which matters on
// shared, noisy machines where a descheduled thread would stall every barrier).
// The epilogue (bias, activation) is applied by the write-back of the last pc slice.
#include "gemm/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "core/activation.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/kernel.h"
#include "gemm/pack.h"
#include "vec/scale_shift.h"

namespace lamina {

namespace {

// Below this many multiply-adds per extra thread, a GEMM stays single-threaded.
constexpr double kMinWorkPerThread = 1 << 19;  // ~5 us of one core's work with AVX-512

// Packing space per calling thread (core/scratch.h).
thread_local AlignedBuffer a_buffer, b_buffer;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Activations other than ReLU (which the micro-kernels apply in registers) run on each finished
// tile row, through the same loop as the activation kernels (core/activation.h).
template <typename T>
void apply_activation_tile(T* C, int64_t ldc, int64_t m, int64_t n, Activation act, T slope) {
    for (int64_t i = 0; i < m; ++i) activate<T>(C + i * ldc, C + i * ldc, n, act, slope);
}

// A finished tile gets its row bias (rb[i] added to row i; rb may be null), then its affine
// (scale and shift start at the tile's first row or column), then its activation.
template <typename T>
void finish_tile_rows(T* C, int64_t ldc, int64_t m, int64_t n, const T* rb,
                      const EpilogueAffine<T>& affine, Activation act, T slope) {
    if (rb)
        for (int64_t i = 0; i < m; ++i) {
            T* c = C + i * ldc;
            for (int64_t j = 0; j < n; ++j) c[j] += rb[i];
        }
    if (affine.scale) {  // a ReLU in the same pass
        const bool relu = act == Activation::relu;
        scale_shift_block(C, ldc, m, n, affine.scale, affine.shift, affine.per_row, relu);
        if (relu) return;
    }
    for (int64_t i = 0; i < m; ++i) activate<T>(C + i * ldc, C + i * ldc, n, act, slope);
}

// The affine of the tile at row i, column j of the job's C.
template <typename T>
EpilogueAffine<T> affine_at(const EpilogueAffine<T>& a, int64_t i, int64_t j) {
    if (!a.scale) return a;
    const int64_t k = a.per_row ? i : j;
    return {a.scale + k, a.shift + k, a.per_row};
}

// K == 0: the product is empty and one row of C becomes c[j] = act(beta*c[j] + bias[j]).
template <typename T>
void finish_empty_row(T* c, const T* bias, int64_t n, T beta, Activation act, T slope) {
    for (int64_t j = 0; j < n; ++j) {
        T v = T(0);
        if (beta != T(0)) v += beta * c[j];
        if (bias) v += bias[j];
        c[j] = v;
    }
    activate<T>(c, c, n, act, slope);
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
    T slope;  // leaky ReLU's negative slope
    bool pack_a, pack_b;  // decided once per call (decide_packing), so every thread agrees
    // Virtual operands (gemm_ex): packed through the source, at row a_row0 of A and column
    // b_col0 of B (a thread's band of C moves these instead of the pointers).
    const PanelSource<T>* a_src = nullptr;
    const PanelSource<T>* b_src = nullptr;
    int64_t a_row0 = 0, b_col0 = 0;
    const T* row_bias = nullptr;  // (M,): added to every column of its row of C (gemm_ex)
    EpilogueAffine<T> affine;     // per row or column, after the biases (gemm_ex)
};

// Packing copies an operand so that the micro-kernel reads it contiguously and from cache; it
// pays when the copy is reused. A packed A block serves every NR-wide tile of C's columns, so A
// stays in place when C has a single column tile or A is small enough to live in L2 anyway;
// B stays in place when its rows are contiguous (the kernel needs vectors of a row) and it is small,
// or when its rows are NR apart (then it is its own packed panel).
// Neither changes the order of any sum: the results are bitwise the same either way.
constexpr int64_t kInPlaceElements = 1 << 16;  // 256 KiB of float32: a quarter of L2
constexpr int64_t kSourceBlockBytes = 1 << 19;  // a packed block of a gathered B: half of a 1 MiB L2

enum PackingMode : int { kAuto = 0, kPacked = 1, kInPlace = 2 };
const char* const kPackingNames[] = {"auto", "packed", "in_place"};
std::atomic<int> packing_mode{kAuto};

template <typename T>
void decide_packing(Job<T>& job, const Blocking<T>& bl) {
    switch (packing_mode.load(std::memory_order_relaxed)) {
        case kPacked: job.pack_a = job.pack_b = true; break;
        case kInPlace: job.pack_a = false, job.pack_b = job.csb != 1; break;
        default:
            job.pack_a = job.N > bl.NR && job.M * job.K > kInPlaceElements;
            // B with rows exactly NR apart is laid out as its packed panel already: a copy of it
            // would only cost time (conv dW with 32 output channels: 14% of it copying dy).
            job.pack_b = job.csb != 1 || (job.K * job.N > kInPlaceElements && job.rsb != bl.NR);
    }
    if (job.a_src) job.pack_a = true;
    if (job.b_src) job.pack_b = true;
}

// The five loops on one thread, with that thread's own packing buffers.
template <typename T>
void blocked_loops(const Job<T>& job, const Blocking<T>& bl, int64_t NC, int64_t KC, T* Ap, T* Bp) {
    const int64_t MR = bl.MR, NR = bl.NR;
    // A packed B panel of n columns is NR wide, or half that when one vector covers it.
    const auto panel_width = [NR](int64_t n) { return n <= NR / 2 ? NR / 2 : NR; };
    for (int64_t jc = 0; jc < job.N; jc += NC) {
        const int64_t nc = std::min(NC, job.N - jc);
        for (int64_t pc = 0; pc < job.K; pc += KC) {
            const int64_t kc = std::min(KC, job.K - pc);
            const bool last = pc + kc == job.K;
            // B as the kernel reads it: packed panels, or B itself with only a partial last tile
            // packed (the kernel reads NR columns of every row it is given).
            if (job.b_src) {
                for (int64_t j = 0; j < nc; j += NR)
                    job.b_src->pack_b(Bp + j * kc, pc, job.b_col0 + jc + j, kc,
                                      std::min(NR, nc - j), int(panel_width(nc - j)));
            } else if (job.pack_b) {
                for (int64_t j = 0; j < nc; j += NR)
                    pack_b_panel(Bp + j * kc, job.B + pc * job.rsb + (jc + j) * job.csb, job.rsb,
                                 job.csb, kc, std::min(NR, nc - j), panel_width(nc - j));
            } else if (nc % NR != 0) {
                const int64_t j = nc / NR * NR;
                pack_b_panel(Bp, job.B + pc * job.rsb + jc + j, job.rsb, int64_t(1), kc, nc - j,
                             panel_width(nc - j));
            }

            // beta applies once, on the first slice of the sum; bias and activation on the last.
            // A row bias or an affine comes after the kernel's write-back, so the activation
            // does too.
            const bool late_finish = last && (job.row_bias || job.affine.scale);
            Epilogue<T> ep{job.alpha, pc == 0 ? job.beta : T(1), nullptr,
                           last && job.act == Activation::relu && !late_finish};
            const bool late_activation =
                last && job.act != Activation::none && (job.act != Activation::relu || late_finish);

            for (int64_t ic = 0; ic < job.M; ic += bl.MC) {
                const int64_t mc = std::min(bl.MC, job.M - ic);
                // A(ic + i.., pc..) as the kernel reads it: the packed block, or A itself.
                const T* a = job.A + ic * job.rsa + pc * job.csa;
                int64_t rsa = job.rsa, csa = job.csa, a_tile = job.rsa;
                if (job.a_src) {
                    job.a_src->pack_a_block(Ap, job.a_row0 + ic, pc, mc, kc, bl.MR);
                    a = Ap, rsa = 1, csa = MR, a_tile = kc;
                    if (job.a_src->packs_a_rows()) rsa = kc, csa = 1;
                } else if (job.pack_a) {
                    for (int64_t i = 0; i < mc; i += MR)
                        pack_a_panel(Ap + i * kc, job.A + (ic + i) * job.rsa + pc * job.csa, job.rsa,
                                     job.csa, std::min(MR, mc - i), kc, bl.MR);
                    a = Ap, rsa = 1, csa = MR, a_tile = kc;
                }

                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t n = std::min(NR, nc - jr);
                    const bool b_in_place = !job.pack_b && n == NR;
                    const T* b = b_in_place ? job.B + pc * job.rsb + jc + jr
                                            : Bp + (job.pack_b ? jr * kc : 0);
                    const int64_t rsb = b_in_place ? job.rsb : panel_width(n);
                    ep.bias = (last && job.bias) ? job.bias + jc + jr : nullptr;
                    // A narrow tile (one vector) takes twice the rows when A is read in place.
                    const int64_t rows = !job.pack_a && n <= NR / 2 ? 2 * MR : MR;
                    for (int64_t ir = 0; ir < mc; ir += rows) {
                        const int64_t m = std::min(rows, mc - ir);
                        T* c = job.C + (ic + ir) * job.ldc + jc + jr;
                        bl.kernel(kc, a + ir * a_tile, rsa, csa, b, rsb, c, job.ldc, m, n, ep);
                        if (late_finish)
                            finish_tile_rows(c, job.ldc, m, n,
                                             job.row_bias ? job.row_bias + ic + ir : nullptr,
                                             affine_at(job.affine, ic + ir, jc + jr), job.act,
                                             job.slope);
                        else if (late_activation)
                            apply_activation_tile(c, job.ldc, m, n, job.act, job.slope);
                    }
                }
            }
        }
    }
}

template <typename T>
void run_on_this_thread(const Job<T>& job, const Blocking<T>& bl) {
    // Equal slices of K and N (rounded up, at most KC and NC): K = 784 runs as 3 x 264, not
    // 384 + 384 + 16, since every K slice pays a pass over C; N = 4096 as 2 x 2048, not 4080 + 16,
    // since every N block repacks all of A.
    // (A product within one block, the common small case, skips the divisions.)
    const auto round_up = [](int64_t x, int64_t unit) { return ceil_div(x, unit) * unit; };
    const int64_t kc = job.K <= bl.KC ? (job.K + 7) / 8 * 8
                                      : std::min(bl.KC, round_up(ceil_div(job.K, ceil_div(job.K, bl.KC)), 8));
    int64_t nc = job.N <= bl.NC ? round_up(job.N, bl.NR)
                                : std::min(bl.NC, round_up(ceil_div(job.N, ceil_div(job.N, bl.NC)), bl.NR));
    // A gathered B (a source) is packed at some cost per value, then read back: a block that
    // stays in L2 is read back from there (a 3x3 convolution's forward ran 8% faster with B blocks
    // of 512 KiB than of 3.6 MiB). Only when A is a matrix, which each extra block re-reads cheaply;
    // the order of every sum is unchanged.
    if (job.b_src && !job.a_src)
        nc = std::min(nc, std::max<int64_t>(bl.NR, kSourceBlockBytes / int64_t(sizeof(T) * kc) / bl.NR * bl.NR));
    const int64_t mc = std::min(bl.MC, round_up(job.M, bl.MR));
    T* Ap = job.pack_a ? static_cast<T*>(a_buffer.get(sizeof(T) * mc * kc)) : nullptr;
    T* Bp = static_cast<T*>(b_buffer.get(sizeof(T) * kc * (job.pack_b ? nc : bl.NR)));
    blocked_loops(job, bl, nc, kc, Ap, Bp);
}

// Part t of `parts` of C: a band of whole register tiles along its longer side (M or N).
// Each thread packs its own A and B, in its own cache, and never waits for another.
template <typename T>
Job<T> part_of(const Job<T>& job, int t, int parts, int64_t MR, int64_t NR) {
    Job<T> sub = job;
    const int64_t m_tiles = ceil_div(job.M, MR), n_tiles = ceil_div(job.N, NR);
    if (n_tiles >= m_tiles) {
        const int64_t j0 = std::min(job.N, n_tiles * t / parts * NR);
        const int64_t j1 = std::min(job.N, n_tiles * (t + 1) / parts * NR);
        sub.N = j1 - j0;
        sub.C += j0;
        if (job.b_src) sub.b_col0 += j0;
        else sub.B += j0 * job.csb;
        if (sub.bias) sub.bias += j0;
        if (!sub.affine.per_row) sub.affine = affine_at(job.affine, 0, j0);
    } else {
        const int64_t i0 = std::min(job.M, m_tiles * t / parts * MR);
        const int64_t i1 = std::min(job.M, m_tiles * (t + 1) / parts * MR);
        sub.M = i1 - i0;
        sub.C += i0 * job.ldc;
        if (job.a_src) sub.a_row0 += i0;
        else sub.A += i0 * job.rsa;
        if (sub.row_bias) sub.row_bias += i0;
        if (sub.affine.per_row) sub.affine = affine_at(job.affine, i0, 0);
    }
    return sub;
}

}  // namespace

const char* gemm_packing() { return kPackingNames[packing_mode.load()]; }

bool set_gemm_packing(const char* mode) {
    for (int i = 0; i < 3; ++i)
        if (std::strcmp(mode, kPackingNames[i]) == 0) {
            packing_mode.store(i);
            return true;
        }
    return false;
}

namespace {

// The job on up to max_threads threads (0: as many as its size repays).
template <typename T>
void run_job(Job<T>& job, int max_threads) {
    const Blocking<T>& bl = active_blocking<T>();
    decide_packing(job, bl);
    int threads = threads_for(double(job.M) * double(job.N) * double(job.K), kMinWorkPerThread);
    if (max_threads > 0) threads = std::min(threads, max_threads);
    if (threads == 1) {
        run_on_this_thread(job, bl);
        return;
    }
    bool out_of_memory = false;  // an exception must not leave an OpenMP region
#pragma omp parallel num_threads(threads)
    {
#ifdef LAMINA_HAVE_OPENMP
        const int t = omp_get_thread_num(), parts = omp_get_num_threads();
#else
        const int t = 0, parts = 1;
#endif
        const Job<T> sub = part_of(job, t, parts, bl.MR, bl.NR);
        try {
            if (sub.M > 0 && sub.N > 0) run_on_this_thread(sub, bl);
        } catch (const std::bad_alloc&) {
#pragma omp atomic write
            out_of_memory = true;
        }
    }
    if (out_of_memory) throw std::bad_alloc();
}

}  // namespace

template <typename T>
void gemm(T* C, int64_t ldc, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
          int64_t csb, const T* bias, int64_t M, int64_t N, int64_t K, T alpha, T beta,
          Activation act, T negative_slope) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (int64_t i = 0; i < M; ++i)
            finish_empty_row<T>(C + i * ldc, bias, N, beta, act, negative_slope);
        return;
    }
    Job<T> job{C, ldc, A, rsa, csa, B, rsb, csb, bias, M, N, K, alpha, beta, act, negative_slope,
               true, true};
    run_job(job, 0);
}

template <typename T>
void gemm_ex(T* C, int64_t ldc, const Operand<T>& A, const Operand<T>& B, const T* bias,
             int64_t M, int64_t N, int64_t K, T alpha, T beta, Activation act, T negative_slope,
             int max_threads, const T* row_bias, const EpilogueAffine<T>& affine) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        const bool late = row_bias || affine.scale;
        for (int64_t i = 0; i < M; ++i) {
            finish_empty_row<T>(C + i * ldc, bias, N, beta, late ? Activation::none : act,
                                negative_slope);
            if (late)
                finish_tile_rows<T>(C + i * ldc, ldc, 1, N, row_bias ? row_bias + i : nullptr,
                                    affine_at(affine, i, 0), act, negative_slope);
        }
        return;
    }
    Job<T> job{C, ldc, A.data, A.rs, A.cs, B.data, B.rs, B.cs, bias, M, N, K, alpha, beta, act,
               negative_slope, true, true};
    job.a_src = A.source;
    job.b_src = B.source;
    job.row_bias = row_bias;
    job.affine = affine;
    run_job(job, max_threads);
}

template void gemm<float>(float*, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
                          int64_t, const float*, int64_t, int64_t, int64_t, float, float, Activation,
                          float);
template void gemm<double>(double*, int64_t, const double*, int64_t, int64_t, const double*, int64_t,
                           int64_t, const double*, int64_t, int64_t, int64_t, double, double,
                           Activation, double);
template void gemm_ex<float>(float*, int64_t, const Operand<float>&, const Operand<float>&,
                             const float*, int64_t, int64_t, int64_t, float, float, Activation,
                             float, int, const float*, const EpilogueAffine<float>&);
template void gemm_ex<double>(double*, int64_t, const Operand<double>&, const Operand<double>&,
                              const double*, int64_t, int64_t, int64_t, double, double, Activation,
                              double, int, const double*, const EpilogueAffine<double>&);

}  // namespace lamina
