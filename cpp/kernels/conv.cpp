// Convolution as implicit GEMMs. Every product reads a patch matrix P through a PanelSource:
// row r = (n, oh, ow) of an output grid, column q = (tap, channel) in the weight's order, and
// P(r, q) the input value under that tap, or 0 in the padding. The same class, with other index
// tables, serves the transposed convolution of backward (the patches of dy under each input pixel).
//
//   forward, channels_last:   y (N*Ho*Wo, Cout/g)   = P (N*Ho*Wo, KH*KW*Cg) @ w_g       one product
//   forward, channels_first:  y_n (Cout/g, Ho*Wo)   = w_g (Cout/g, Cg*KH*KW) @ P_n^T    per image
//   dW, channels_last:        dW_g^T (Cout/g, KH*KW*Cg) += dy_g^T @ P      K = N*Ho*Wo
//                             (one channel per group: dW_g += P^T @ dy_g, in place)
//   dW, channels_first:       dW_g (Cout/g, Cg*KH*KW) += dy_g @ P          K = N*Ho*Wo
//   dx: the same shapes with Q, the patches of dy under each input pixel, and the weight
//       rearranged once per call (weight-sized copy) so that its rows run over (tap, Cout/g).
// Transposed convolution as a gather: for stride s > 1 a tap of Q hits an output pixel only when
// (h + pad - kh*dilation) is a multiple of s; the others are zeros that the product still
// multiplies (about (1 - 1/s_h/s_w) of dx's multiply-adds are wasted on zeros).
// Groups run one product per group. Depthwise convolution (groups == C) is correct this way but
// slow: every product has K = KH*KW and N = Cout/groups, far too small for the register tiles.
// Threads: a product splits its own M or N; channels_first runs one image per thread when the
// batch has at least as many images as threads. No reduction is ever split, so the results are
// bitwise the same for any thread count.
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/parallel.h"
#include "core/scratch.h"
#include "gemm/gemm.h"
#include "gemm/pack.h"
#include "kernels/dense.h"

namespace lamina {

namespace {

// tab[o*K + k] = the source index a tap k of output o reads, or -1 (padding).
// Forward: i = o*stride - pad + k*dilation, inside [0, size).
std::vector<int64_t> forward_taps(int64_t out, int64_t K, int64_t size, int64_t stride,
                                  int64_t pad, int64_t dilation) {
    std::vector<int64_t> tab(out * K);
    for (int64_t o = 0; o < out; ++o)
        for (int64_t k = 0; k < K; ++k) {
            const int64_t i = o * stride - pad + k * dilation;
            tab[o * K + k] = i >= 0 && i < size ? i : -1;
        }
    return tab;
}

// Transposed: input position i takes tap k from output o = (i + pad - k*dilation) / stride when
// that divides exactly and o is inside [0, out).
std::vector<int64_t> transposed_taps(int64_t in, int64_t K, int64_t out, int64_t stride,
                                     int64_t pad, int64_t dilation) {
    std::vector<int64_t> tab(in * K);
    for (int64_t i = 0; i < in; ++i)
        for (int64_t k = 0; k < K; ++k) {
            const int64_t t = i + pad - k * dilation;
            tab[i * K + k] = t >= 0 && t % stride == 0 && t / stride < out ? t / stride : -1;
        }
    return tab;
}

// out[0..n) = in[0..n): the runs are short (a panel is 8 to 32 values wide), where a library
// memcpy call costs as much as the copy; SSE2 is part of the x86-64 baseline.
inline void copy_run(float* out, const float* in, int64_t n) {
    int64_t t = 0;
#if defined(__SSE2__)
    for (; t + 4 <= n; t += 4) _mm_storeu_ps(out + t, _mm_loadu_ps(in + t));
#endif
    for (; t < n; ++t) out[t] = in[t];
}
inline void copy_run(double* out, const double* in, int64_t n) {
    int64_t t = 0;
#if defined(__SSE2__)
    for (; t + 2 <= n; t += 2) _mm_storeu_pd(out + t, _mm_loadu_pd(in + t));
#endif
    for (; t < n; ++t) out[t] = in[t];
}

// out[0..n) = 0, for the same short runs (a library memset call per run of a few values cost 7%
// of a small image's dx).
inline void zero_run(float* out, int64_t n) {
    int64_t t = 0;
#if defined(__SSE2__)
    for (; t + 4 <= n; t += 4) _mm_storeu_ps(out + t, _mm_setzero_ps());
#endif
    for (; t < n; ++t) out[t] = 0.0f;
}
inline void zero_run(double* out, int64_t n) {
    int64_t t = 0;
#if defined(__SSE2__)
    for (; t + 2 <= n; t += 2) _mm_storeu_pd(out + t, _mm_setzero_pd());
#endif
    for (; t < n; ++t) out[t] = 0.0;
}

// Where the taps of one column kw read, when that is a straight line: for ow in [lo, hi) the
// source column is ow*step + off, outside it padding. True of every forward table, and of the
// transposed one at stride 1; the gather then copies runs instead of looking each index up.
struct Run {
    int64_t lo, hi, step, off;
};

// runs[k] for every tap k of a (out, K) table, or empty when some tap is not a straight run.
std::vector<Run> straight_runs(const std::vector<int64_t>& tab, int64_t out, int64_t K) {
    std::vector<Run> runs(K);
    for (int64_t k = 0; k < K; ++k) {
        int64_t lo = -1, hi = -1;
        for (int64_t o = 0; o < out; ++o)
            if (tab[o * K + k] >= 0) {
                if (lo < 0) lo = o;
                else if (hi != o) return {};  // a hole: not one run
                hi = o + 1;
            }
        if (lo < 0) {
            runs[k] = {0, 0, 1, 0};
            continue;
        }
        const int64_t step = hi - lo > 1 ? tab[(lo + 1) * K + k] - tab[lo * K + k] : 1;
        for (int64_t o = lo; o < hi; ++o)
            if (tab[o * K + k] != tab[lo * K + k] + (o - lo) * step) return {};
        runs[k] = {lo, hi, step, tab[lo * K + k] - lo * step};
    }
    return runs;
}

// The patch matrix P over a batch of source images (see the top of the file), used as A or B,
// as itself or transposed. Every element of the requested block is written (zeros included), so
// only the padding of an edge panel needs zeroing first.
template <typename T>
class PatchMatrix final : public PanelSource<T> {
  public:
    const T* src;                  // the source batch (x, or dy for dx)
    int64_t sn, sc, sh, sw;        // its element strides: image, channel, row, column
    int64_t c0, Cg;                // the group's channels: c0 .. c0 + Cg
    int64_t KH, KW;                // taps
    int64_t Hg, Wg;                // the grid the rows run over (per image)
    const int64_t* row_tab;        // (Hg, KH): source row of each tap, or -1
    const int64_t* col_tab;        // (Wg, KW): source column of each tap, or -1
    const Run* col_runs = nullptr; // (KW,): col_tab as straight runs, or null
    bool channel_fastest;          // columns ordered (kh, kw, c), else (c, kh, kw)
    bool transposed;               // the operand is P^T

    // The source's contiguous runs (channels for channels_last, row pixels for channels_first)
    // go straight into the panel when they run along it; when they run across it, they are
    // gathered into a staging tile first and the engine's packing routines transpose that tile
    // into the panel (4 x 4 SSE transposes for float32), instead of one strided store per value.
    // With one channel per group the two column orders are the same, and channels_last takes the
    // channels_first walk (a pixel run instead of one-channel runs: the first layer of an image
    // model, and depthwise convolution).
    void pack_a(T* Ap, int64_t i0, int64_t p0, int64_t m, int64_t k, int MR) const override {
        const bool by_pixel = channel_fastest && Cg > 1;
        if (!transposed && by_pixel) {  // A(i, p) = P(i, p): pixel rows, channel runs
            T* tile = stage(m * k);
            fill_by_pixel(tile, i0, m, p0, k, k, 1);
            pack_a_panel(Ap, tile, k, int64_t(1), m, k, MR);
            return;
        }
        if (transposed && !by_pixel) {  // A(i, p) = P(p, i): pixel runs along p
            T* tile = stage(m * k);
            fill_by_column(tile, p0, k, i0, m, 1, k);
            pack_a_panel(Ap, tile, k, int64_t(1), m, k, MR);
            return;
        }
        if (m < MR) std::memset(Ap, 0, sizeof(T) * k * MR);
        if (!transposed) fill_by_column(Ap, i0, m, p0, k, 1, MR);
        else fill_by_pixel(Ap, p0, k, i0, m, MR, 1);
    }
    // Pixel runs down the rows of A (P itself, one channel per group or channels_first): the
    // whole block is gathered at once into a staging tile whose rows run over the block's pixels,
    // so each tap copies runs as long as an output row, and the tile is then cut into panels
    // (straight MR-value copies). Per panel, the run setup cost more than the copies: a 3x3
    // first layer (one channel, K = 9) spent 40% of its forward there.
    // Runs along the rows of A (channel runs of P itself, channels_last; pixel runs of P^T): the
    // block is gathered row-major and read in place, with no staging tile and no transpose into
    // panels (packs_a_rows).
    bool packs_a_rows() const override { return transposed != (channel_fastest && Cg > 1); }
    void pack_a_block(T* Ap, int64_t i0, int64_t p0, int64_t m, int64_t k, int MR) const override {
        if (packs_a_rows()) {
            if (!transposed) fill_by_pixel(Ap, i0, m, p0, k, k, 1);
            else fill_by_column(Ap, p0, k, i0, m, 1, k);
            return;
        }
        if (transposed || (channel_fastest && Cg > 1)) {
            PanelSource<T>::pack_a_block(Ap, i0, p0, m, k, MR);
            return;
        }
        T* tile = stage(m * k);  // tile[p*m + i] = P(i0 + i, p0 + p)
        fill_by_column(tile, i0, m, p0, k, 1, m);
        for (int64_t i = 0; i < m; i += MR)
            pack_a_panel(Ap + i * k, tile + i, int64_t(1), m, std::min<int64_t>(MR, m - i), k, MR);
    }
    void pack_b(T* Bp, int64_t p0, int64_t j0, int64_t k, int64_t n, int width) const override {
        const bool by_pixel = channel_fastest && Cg > 1;
        if (!transposed && !by_pixel) {  // B(p, j) = P(p, j): pixel runs along p
            T* tile = stage(n * k);
            fill_by_column(tile, p0, k, j0, n, 1, k);
            pack_b_panel(Bp, tile, int64_t(1), k, k, n, width);
            return;
        }
        if (transposed && by_pixel) {  // B(p, j) = P(j, p): channel runs along p
            T* tile = stage(n * k);
            fill_by_pixel(tile, j0, n, p0, k, k, 1);
            pack_b_panel(Bp, tile, int64_t(1), k, k, n, width);
            return;
        }
        if (n < width) std::memset(Bp, 0, sizeof(T) * k * width);
        if (!transposed) fill_by_pixel(Bp, p0, k, j0, n, width, 1);
        else fill_by_column(Bp, j0, n, p0, k, 1, width);
    }

  private:
    // The staging tile of this thread (a panel's worth: KC x NR values at most).
    static T* stage(int64_t n) {
        thread_local AlignedBuffer buffer;
        return static_cast<T*>(buffer.get(sizeof(T) * size_t(n)));
    }

    // channels_last: a column run of P within one tap is a contiguous run of channels in the
    // source, so walk pixels outside and copy channel runs inside.
    void fill_by_pixel(T* dst, int64_t r0, int64_t nr, int64_t q0, int64_t nq, int64_t r_step,
                       int64_t q_step) const {
        const int64_t HW = Hg * Wg;
        int64_t n = r0 / HW, oh = r0 % HW / Wg, ow = r0 % Wg;
        const int64_t kk0 = q0 / Cg, c_first = q0 % Cg;
        if (c_first + nq <= Cg && q_step == 1 && sc == 1) {
            // Every column in one tap (a panel of MR or NR channels, as dW's A is): one lookup
            // and one short copy per pixel.
            const int64_t kh = kk0 / KW, kw = kk0 % KW;
            for (int64_t rr = 0; rr < nr; ++rr) {
                const int64_t ih = row_tab[oh * KH + kh], iw = col_tab[ow * KW + kw];
                T* o = dst + rr * r_step;
                if (ih >= 0 && iw >= 0) {
                    const T* s = src + n * sn + (c0 + c_first) + ih * sh + iw * sw;
                    for (int64_t t = 0; t < nq; ++t) o[t] = s[t];
                } else {
                    for (int64_t t = 0; t < nq; ++t) o[t] = T(0);
                }
                if (++ow == Wg) {
                    ow = 0;
                    if (++oh == Hg) oh = 0, ++n;
                }
            }
            return;
        }
        for (int64_t rr = 0; rr < nr; ++rr) {
            const T* base = src + n * sn + c0 * sc;
            const int64_t* rt = row_tab + oh * KH;
            const int64_t* ct = col_tab + ow * KW;
            T* d = dst + rr * r_step;
            int64_t kh = kk0 / KW, kw = kk0 % KW, c = c_first;
            for (int64_t qq = 0; qq < nq; c = 0) {
                const int64_t run = std::min(Cg - c, nq - qq);
                const int64_t ih = rt[kh], iw = ct[kw];
                if (++kw == KW) kw = 0, ++kh;
                T* o = d + qq * q_step;
                if (ih >= 0 && iw >= 0) {
                    const T* s = base + ih * sh + iw * sw + c * sc;
                    if (q_step == 1 && sc == 1) std::memcpy(o, s, sizeof(T) * run);
                    else
                        for (int64_t t = 0; t < run; ++t) o[t * q_step] = s[t * sc];
                } else {
                    for (int64_t t = 0; t < run; ++t) o[t * q_step] = T(0);
                }
                qq += run;
            }
            if (++ow == Wg) {
                ow = 0;
                if (++oh == Hg) oh = 0, ++n;
            }
        }
    }

    // channels_first ((c, kh, kw) column order, the only one this is called for, or one channel
    // per group, where both orders agree): a run of P's
    // rows within one output row reads one source row, so walk columns outside and copy row runs
    // inside (a straight copy at stride 1). The rows are cut into such runs once, and the columns
    // decoded incrementally: no division per column.
    void fill_by_column(T* dst, int64_t r0, int64_t nr, int64_t q0, int64_t nq, int64_t r_step,
                        int64_t q_step) const {
        struct Segment {
            int64_t rr, len, ow;
            int64_t tap_row;  // oh * KH: where this output row's taps start in row_tab
            int64_t image;    // n * sn
        };
        thread_local std::vector<Segment> segments;
        segments.clear();
        const int64_t HW = Hg * Wg, KK = KH * KW;
        {
            int64_t n = r0 / HW, oh = r0 % HW / Wg, ow = r0 % Wg;
            for (int64_t rr = 0; rr < nr;) {
                const int64_t len = std::min(Wg - ow, nr - rr);
                segments.push_back({rr, len, ow, oh * KH, n * sn});
                rr += len;
                ow += len;
                if (ow == Wg) {
                    ow = 0;
                    if (++oh == Hg) oh = 0, ++n;
                }
            }
        }
        const bool contiguous = r_step == 1 && sw == 1;
        int64_t c = q0 / KK, kh = q0 % KK / KW, kw = q0 % KW;
        for (int64_t qq = 0; qq < nq; ++qq) {
            const T* chan = src + (c0 + c) * sc;
            const int64_t* rt = row_tab + kh;
            T* d = dst + qq * q_step;
            const Run* R = col_runs ? col_runs + kw : nullptr;
            const bool straight = R && R->step == 1 && contiguous;
            for (const Segment& g : segments) {
                T* out = d + g.rr * r_step;
                const int64_t ih = rt[g.tap_row];
                if (ih < 0) {
                    if (r_step == 1) zero_run(out, g.len);
                    else
                        for (int64_t t = 0; t < g.len; ++t) out[t * r_step] = T(0);
                    continue;
                }
                const T* row = chan + g.image + ih * sh;
                const int64_t ow = g.ow, end = ow + g.len;
                if (R) {
                    const int64_t a = std::clamp(R->lo, ow, end), b = std::clamp(R->hi, a, end);
                    if (straight) {
                        zero_run(out, a - ow);
                        copy_run(out + (a - ow), row + a + R->off, b - a);
                        zero_run(out + (b - ow), end - b);
                        continue;
                    }
                    for (int64_t t = ow; t < a; ++t) out[(t - ow) * r_step] = T(0);
                    for (int64_t t = a; t < b; ++t)
                        out[(t - ow) * r_step] = row[(t * R->step + R->off) * sw];
                    for (int64_t t = b; t < end; ++t) out[(t - ow) * r_step] = T(0);
                } else {
                    const int64_t* ct = col_tab + kw;
                    for (int64_t t = 0; t < g.len; ++t) {
                        const int64_t iw = ct[(ow + t) * KW];
                        out[t * r_step] = iw >= 0 ? row[iw * sw] : T(0);
                    }
                }
            }
            if (++kw == KW) {
                kw = 0;
                if (++kh == KH) kh = 0, ++c;
            }
        }
    }
};

template <typename T>
Operand<T> matrix(const T* data, int64_t rs, int64_t cs) {
    Operand<T> op;
    op.data = data, op.rs = rs, op.cs = cs;
    return op;
}

template <typename T>
Operand<T> sourced(const PanelSource<T>* source) {
    Operand<T> op;
    op.source = source;
    return op;
}

// body(n, max_threads) for every image n: one image per thread when there are at least as many
// images as threads (each product then single-threaded), else one image after the other with
// every product free to split.
template <typename Body>
void for_each_image(int64_t N, double work_per_image, Body&& body) {
    const int threads = get_num_threads();
    if (threads > 1 && N >= threads && double(N) * work_per_image >= double(1 << 20)) {
        bool out_of_memory = false;  // an exception must not leave an OpenMP region
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t n = 0; n < N; ++n) {
            try {
                body(n, 1);
            } catch (const std::bad_alloc&) {
#pragma omp atomic write
                out_of_memory = true;
            }
        }
        if (out_of_memory) throw std::bad_alloc();
        return;
    }
    for (int64_t n = 0; n < N; ++n) body(n, 0);
}

}  // namespace

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, Activation act,
                    double negative_slope, const T* scale, const T* shift) {
    const int64_t Ho = s.Ho(), Wo = s.Wo(), G = s.groups, Cg = s.C / G, Cog = s.Cout / G;
    const int64_t KK = s.KH * s.KW, HoWo = Ho * Wo, K = KK * Cg;
    if (s.N == 0 || s.Cout == 0 || HoWo == 0) return;
    const T slope = T(negative_slope);
    const std::vector<int64_t> rows = forward_taps(Ho, s.KH, s.H, s.stride_h, s.pad_top, s.dilation_h);
    const std::vector<int64_t> cols = forward_taps(Wo, s.KW, s.W, s.stride_w, s.pad_left, s.dilation_w);
    const std::vector<Run> runs = straight_runs(cols, Wo, s.KW);
    // The folded affine of group g's output channels: C's columns (channels_last) or rows.
    const auto affine = [&](int64_t g) {
        EpilogueAffine<T> a;
        if (scale) a.scale = scale + g * Cog, a.shift = shift + g * Cog;
        a.per_row = !s.channels_last;
        return a;
    };
    if (s.channels_last) {
        for (int64_t g = 0; g < G; ++g) {
            PatchMatrix<T> P;
            P.src = x, P.sn = s.H * s.W * s.C, P.sc = 1, P.sh = s.W * s.C, P.sw = s.C;
            P.c0 = g * Cg, P.Cg = Cg, P.KH = s.KH, P.KW = s.KW, P.Hg = Ho, P.Wg = Wo;
            P.row_tab = rows.data(), P.col_tab = cols.data();
            P.col_runs = runs.empty() ? nullptr : runs.data();
            P.channel_fastest = true, P.transposed = false;
            gemm_ex<T>(y + g * Cog, s.Cout, sourced(&P), matrix(w + g * Cog, s.Cout, int64_t(1)),
                       b ? b + g * Cog : nullptr, s.N * HoWo, Cog, K, T(1), T(0), act, slope, 0,
                       nullptr, affine(g));
        }
        return;
    }
    // channels_first: the bias runs along C's rows (the engine's row bias, added to each tile as
    // it is finished).
    for_each_image(s.N, double(s.Cout) * double(HoWo) * double(K), [&](int64_t n, int max_threads) {
        for (int64_t g = 0; g < G; ++g) {
            T* c = y + (n * s.Cout + g * Cog) * HoWo;
            PatchMatrix<T> P;
            P.src = x + n * s.C * s.H * s.W, P.sn = 0, P.sc = s.H * s.W, P.sh = s.W, P.sw = 1;
            P.c0 = g * Cg, P.Cg = Cg, P.KH = s.KH, P.KW = s.KW, P.Hg = Ho, P.Wg = Wo;
            P.row_tab = rows.data(), P.col_tab = cols.data();
            P.channel_fastest = false, P.transposed = true;
            P.col_runs = runs.empty() ? nullptr : runs.data();
            gemm_ex<T>(c, HoWo, matrix(w + g * Cog * K, K, int64_t(1)), sourced(&P), nullptr, Cog,
                       HoWo, K, T(1), T(0), act, slope, max_threads, b ? b + g * Cog : nullptr,
                       affine(g));
        }
    });
}

template <typename T>
void conv2d_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* w, const ConvShape& s,
                     bool accumulate) {
    const int64_t Ho = s.Ho(), Wo = s.Wo(), G = s.groups, Cg = s.C / G, Cog = s.Cout / G;
    const int64_t KK = s.KH * s.KW, HoWo = Ho * Wo, HW = s.H * s.W, K = KK * Cg;
    const int64_t R = s.N * HoWo;  // the reduction of dW and db: every output pixel
    const T beta = accumulate ? T(1) : T(0);
    if (R == 0 || s.Cout == 0) {  // no output pixel: nothing to add, and dx is all zeros
        if (!accumulate && dW) std::fill(dW, dW + s.Cout * Cg * KK, T(0));
        if (!accumulate && db) std::fill(db, db + s.Cout, T(0));
        if (dx) std::fill(dx, dx + s.N * s.C * HW, T(0));
        return;
    }

    if (db) {
        if (!accumulate) std::fill(db, db + s.Cout, T(0));
        if (s.channels_last) {
            column_sums(db, dy, R, s.Cout);
        } else {
            // Each channel summed in 16 lanes (pixel p into lane p % 16, images in order), the
            // lanes then added in order: a fixed order for any thread count, and a loop the
            // compiler vectorises (one running sum would be a chain of dependent adds).
            constexpr int kLanes = 16;
            parallel_for(s.Cout, double(R), 1 << 16, [&](int64_t c0, int64_t c1) {
                for (int64_t co = c0; co < c1; ++co) {
                    T lane[kLanes] = {};
                    for (int64_t n = 0; n < s.N; ++n) {
                        const T* row = dy + (n * s.Cout + co) * HoWo;
                        int64_t p = 0;
                        for (; p + kLanes <= HoWo; p += kLanes)
                            for (int l = 0; l < kLanes; ++l) lane[l] += row[p + l];
                        for (int l = 0; p < HoWo; ++p, ++l) lane[l] += row[p];
                    }
                    T sum = db[co];
                    for (int l = 0; l < kLanes; ++l) sum += lane[l];
                    db[co] = sum;
                }
            });
        }
    }

    if (dW) {
        const std::vector<int64_t> rows = forward_taps(Ho, s.KH, s.H, s.stride_h, s.pad_top, s.dilation_h);
        const std::vector<int64_t> cols = forward_taps(Wo, s.KW, s.W, s.stride_w, s.pad_left, s.dilation_w);
        const std::vector<Run> runs = straight_runs(cols, Wo, s.KW);
        for (int64_t g = 0; g < G; ++g) {
            PatchMatrix<T> P;
            P.col_runs = runs.empty() ? nullptr : runs.data();
            P.src = x, P.c0 = g * Cg, P.Cg = Cg, P.KH = s.KH, P.KW = s.KW, P.Hg = Ho, P.Wg = Wo;
            P.row_tab = rows.data(), P.col_tab = cols.data();
            if (s.channels_last && Cg > 1) {
                // dW_g^T (Cout/g, KH*KW*Cg) = dy_g^T @ P, then transposed into place: P as B
                // gathers a whole tap's channel run (a panel's NR channels) per pixel looked up,
                // where P^T as A took MR channels per lookup (conv 32->64 3x3 on 13x13, batch 128: 7.1 -> 5.3 ms).
                P.sn = HW * s.C, P.sc = 1, P.sh = s.W * s.C, P.sw = s.C;
                P.channel_fastest = true, P.transposed = false;
                std::vector<T> dWt(size_t(Cog * K));  // dWt[co*K + q] = dW[q*Cout + g*Cog + co]
                if (accumulate)
                    for (int64_t q = 0; q < K; ++q)
                        for (int64_t co = 0; co < Cog; ++co) dWt[co * K + q] = dW[q * s.Cout + g * Cog + co];
                gemm_ex<T>(dWt.data(), K, matrix(dy + g * Cog, int64_t(1), s.Cout), sourced(&P), nullptr,
                           Cog, K, R, T(1), beta, Activation::none, T(0));
                for (int64_t q = 0; q < K; ++q)
                    for (int64_t co = 0; co < Cog; ++co) dW[q * s.Cout + g * Cog + co] = dWt[co * K + q];
            } else if (s.channels_last) {
                P.sn = HW * s.C, P.sc = 1, P.sh = s.W * s.C, P.sw = s.C;
                P.channel_fastest = true, P.transposed = true;
                gemm_ex<T>(dW + g * Cog, s.Cout, sourced(&P), matrix(dy + g * Cog, s.Cout, int64_t(1)),
                           nullptr, K, Cog, R, T(1), beta, Activation::none, T(0));
            } else {
                P.sn = s.C * HW, P.sc = HW, P.sh = s.W, P.sw = 1;
                P.channel_fastest = false, P.transposed = false;
                // dy_g as A (Cout/g, N*Ho*Wo): a 1x1 patch matrix of dy, transposed.
                const std::vector<int64_t> ident_h = forward_taps(Ho, 1, Ho, 1, 0, 1);
                const std::vector<int64_t> ident_w = forward_taps(Wo, 1, Wo, 1, 0, 1);
                PatchMatrix<T> D;
                D.src = dy, D.sn = s.Cout * HoWo, D.sc = HoWo, D.sh = Wo, D.sw = 1;
                D.c0 = g * Cog, D.Cg = Cog, D.KH = 1, D.KW = 1, D.Hg = Ho, D.Wg = Wo;
                D.row_tab = ident_h.data(), D.col_tab = ident_w.data();
                D.channel_fastest = false, D.transposed = true;
                const std::vector<Run> ident_runs = straight_runs(ident_w, Wo, 1);
                D.col_runs = ident_runs.data();
                gemm_ex<T>(dW + g * Cog * K, K, sourced(&D), sourced(&P), nullptr, Cog, K, R, T(1),
                           beta, Activation::none, T(0));
            }
        }
    }

    if (dx) {
        const std::vector<int64_t> rows = transposed_taps(s.H, s.KH, Ho, s.stride_h, s.pad_top, s.dilation_h);
        const std::vector<int64_t> cols = transposed_taps(s.W, s.KW, Wo, s.stride_w, s.pad_left, s.dilation_w);
        const std::vector<Run> runs = straight_runs(cols, s.W, s.KW);  // empty for stride > 1
        const int64_t Kt = KK * Cog;  // the transposed product's depth: taps x the group's outputs
        // The weight with its rows over (tap, output channel), one copy per call.
        std::vector<T> wt(size_t(G * Kt * Cg));
        if (s.channels_last) {
            // wt_g is (KK*Cog, Cg): wt_g[(kk*Cog + co)*Cg + ci] = w[kk, ci, g*Cog + co]
            for (int64_t g = 0; g < G; ++g)
                for (int64_t kk = 0; kk < KK; ++kk)
                    for (int64_t co = 0; co < Cog; ++co)
                        for (int64_t ci = 0; ci < Cg; ++ci)
                            wt[(g * Kt + kk * Cog + co) * Cg + ci] = w[(kk * Cg + ci) * s.Cout + g * Cog + co];
            for (int64_t g = 0; g < G; ++g) {
                PatchMatrix<T> Q;
                Q.src = dy, Q.sn = HoWo * s.Cout, Q.sc = 1, Q.sh = Wo * s.Cout, Q.sw = s.Cout;
                Q.c0 = g * Cog, Q.Cg = Cog, Q.KH = s.KH, Q.KW = s.KW, Q.Hg = s.H, Q.Wg = s.W;
                Q.row_tab = rows.data(), Q.col_tab = cols.data();
                Q.channel_fastest = true, Q.transposed = false;
                gemm_ex<T>(dx + g * Cg, s.C, sourced(&Q), matrix(wt.data() + g * Kt * Cg, Cg, int64_t(1)),
                           nullptr, s.N * HW, Cg, Kt, T(1), T(0), Activation::none, T(0));
            }
            return;
        }
        // wt_g is (Cg, Cog*KK): wt_g[ci*(Cog*KK) + co*KK + kk] = w[g*Cog + co, ci, kk]
        for (int64_t g = 0; g < G; ++g)
            for (int64_t co = 0; co < Cog; ++co)
                for (int64_t ci = 0; ci < Cg; ++ci)
                    for (int64_t kk = 0; kk < KK; ++kk)
                        wt[g * Cg * Kt + ci * Kt + co * KK + kk] = w[((g * Cog + co) * Cg + ci) * KK + kk];
        for_each_image(s.N, double(s.C) * double(HW) * double(Kt), [&](int64_t n, int max_threads) {
            for (int64_t g = 0; g < G; ++g) {
                PatchMatrix<T> Q;
                Q.src = dy + n * s.Cout * HoWo, Q.sn = 0, Q.sc = HoWo, Q.sh = Wo, Q.sw = 1;
                Q.c0 = g * Cog, Q.Cg = Cog, Q.KH = s.KH, Q.KW = s.KW, Q.Hg = s.H, Q.Wg = s.W;
                Q.row_tab = rows.data(), Q.col_tab = cols.data();
                Q.channel_fastest = false, Q.transposed = true;
                Q.col_runs = runs.empty() ? nullptr : runs.data();
                gemm_ex<T>(dx + (n * s.C + g * Cg) * HW, HW, matrix(wt.data() + g * Cg * Kt, Kt, int64_t(1)),
                           sourced(&Q), nullptr, Cg, HW, Kt, T(1), T(0), Activation::none, T(0),
                           max_threads);
            }
        });
    }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*, const ConvShape&, Activation, double, const float*, const float*);
template void conv2d_forward<double>(double*, const double*, const double*, const double*, const ConvShape&, Activation, double, const double*, const double*);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*, const float*, const ConvShape&, bool);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*, const double*, const ConvShape&, bool);

}  // namespace lamina
