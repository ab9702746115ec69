// Batch and layer normalization (kernels/normalization.h). The loops over the data are in
// normalization_loops.h, one copy per ISA; this file splits the work and does the per-channel
// (per-row) arithmetic between the passes, in double.
//
// Batch norm has two layouts. A channel with inner > 1 (channels_first) is `outer` contiguous runs
// of `inner` values: threads take whole channels, and each channel's passes follow each other
// while its values are still in cache. With inner == 1 (channels_last, (N, C)) a row holds one
// value of every channel: threads take ranges of channels and the loops run along the rows, one
// sum per channel. Layer norm: threads take rows; dgamma and dbeta, sums over rows, are summed per
// fixed block of rows and the blocks added in order, so the order depends on the shape alone.
#include "kernels/normalization.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/isa.h"
#include "core/parallel.h"
#include "kernels/normalization_loops.h"

namespace lamina {

const NormLoops<float>& norm_loops_f32() {
    static constexpr NormLoops<float> generic = norm_body::table<float>();
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return norm_loops_f32_avx512();
        case Isa::avx2: return norm_loops_f32_avx2();
#endif
        default: return generic;
    }
}

const NormLoops<double>& norm_loops_f64() {
    static constexpr NormLoops<double> generic = norm_body::table<double>();
    switch (active_isa()) {
#ifdef LAMINA_HAVE_X86_KERNELS
        case Isa::avx512: return norm_loops_f64_avx512();
        case Isa::avx2: return norm_loops_f64_avx2();
#endif
        default: return generic;
    }
}

template <>
const NormLoops<float>& norm_loops<float>() { return norm_loops_f32(); }
template <>
const NormLoops<double>& norm_loops<double>() { return norm_loops_f64(); }

namespace {

constexpr double kMinWorkPerThread = 1 << 15;  // element operations
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double lane_sum(const double* s) {
    double total = 0.0;
    for (int l = 0; l < kLanes; ++l) total += s[l];
    return total;
}

// mean and biased variance of m values from their sums shifted by `shift`:
// s1 = sum (x - shift), s2 = sum (x - shift)^2.
struct Moments {
    double mean, var;
};

Moments moments(double shift, double s1, double s2, int64_t m) {
    const double d = s1 / double(m);
    const double var = s2 / double(m) - d * d;
    return {shift + d, var < 0.0 ? 0.0 : var};  // rounding can take it below 0; NaN stays NaN
}

// Layer norm's blocks of rows for dgamma and dbeta: a function of the row count only.
int64_t row_block(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(64, rows / 16)); }

}  // namespace

// ---- batch norm ---------------------------------------------------------------------------------

namespace {

// One channel's statistics from its `outer` runs of `inner` values (inner > 1).
template <typename T>
Moments channel_moments(const NormLoops<T>& loops, const T* x, const ChannelView& v, int64_t c) {
    double s1[kLanes] = {}, s2[kLanes] = {};
    const double shift = double(x[c * v.inner]);
    for (int64_t o = 0; o < v.outer; ++o)
        loops.moments_run(s1, s2, x + (o * v.channels + c) * v.inner, v.inner, shift);
    return moments(shift, lane_sum(s1), lane_sum(s2), v.per_channel());
}

// running = running (1 - momentum) + batch momentum for channel c (the variance unbiased or not).
template <typename T>
void update_running(T* running_mean, T* running_var, T mean, T var, int64_t c, int64_t m,
                    double momentum, bool unbiased) {
    const double correction = unbiased && m > 1 ? double(m) / double(m - 1) : 1.0;
    running_mean[c] = T(double(running_mean[c]) * (1.0 - momentum) + double(mean) * momentum);
    running_var[c] =
        T(double(running_var[c]) * (1.0 - momentum) + double(var) * correction * momentum);
}

// scale, shift and invstd of channel c.
template <typename T>
struct Affine {
    T scale, shift, invstd;
};

template <typename T>
Affine<T> affine(T mean, T var, const T* gamma, const T* beta, int64_t c, double eps) {
    const double inv = 1.0 / std::sqrt(double(var) + eps);
    const T s = T((gamma ? double(gamma[c]) : 1.0) * inv);
    return {s, T((beta ? double(beta[c]) : 0.0) - double(mean) * double(s)), T(inv)};
}

// y = act(fma(x, scale, shift)) over the run q = o * C + c.
template <typename T>
void apply_run(const NormLoops<T>& loops, T* y, const T* x, int64_t q, int64_t inner, T scale,
               T shift, Activation act, double negative_slope) {
    const bool relu = act == Activation::relu;
    loops.affine_run(y + q * inner, x + q * inner, inner, scale, shift, relu);
    if (act != Activation::none && !relu)  // any other activation after the fma, in place
        activate(y + q * inner, y + q * inner, inner, act, T(negative_slope));
}

}  // namespace

template <typename T>
void batch_norm_statistics(T* mean, T* var, const T* x, const ChannelView& v) {
    const int64_t C = v.channels, m = v.per_channel();
    if (m == 0) {  // no values: no statistics (the bindings reject training on these)
        std::fill(mean, mean + C, T(kNaN));
        std::fill(var, var + C, T(kNaN));
        return;
    }
    const NormLoops<T>& loops = norm_loops<T>();
    if (v.inner == 1) {
        // x is (outer, C): sums along the rows, one per channel of this thread's range.
        parallel_for(C, 3.0 * double(m), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
            const int64_t n = hi - lo;
            std::vector<double> shift(x + lo, x + hi), s1(n, 0.0), s2(n, 0.0);
            loops.moments_rows(s1.data(), s2.data(), x + lo, v.outer, C, n, shift.data());
            for (int64_t j = 0; j < n; ++j) {
                const Moments s = moments(shift[j], s1[j], s2[j], m);
                mean[lo + j] = T(s.mean), var[lo + j] = T(s.var);
            }
        });
        return;
    }
    // x is (outer, C, inner): channel c is `outer` runs of `inner` values.
    parallel_for(C, 3.0 * double(m), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
            const Moments s = channel_moments(loops, x, v, c);
            mean[c] = T(s.mean), var[c] = T(s.var);
        }
    });
}

template <typename T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var,
                               int64_t channels, int64_t m, double momentum, bool unbiased) {
    for (int64_t c = 0; c < channels; ++c)
        update_running(running_mean, running_var, mean[c], var[c], c, m, momentum, unbiased);
}

template <typename T>
void batch_norm_affine(T* scale, T* shift, T* invstd, const T* mean, const T* var, const T* gamma,
                       const T* beta, int64_t channels, double eps) {
    for (int64_t c = 0; c < channels; ++c) {
        const Affine<T> a = affine(mean[c], var[c], gamma, beta, c, eps);
        scale[c] = a.scale, shift[c] = a.shift;
        if (invstd) invstd[c] = a.invstd;
    }
}

template <typename T>
void batch_norm_apply(T* y, const T* x, const T* scale, const T* shift, const ChannelView& v,
                      Activation act, double negative_slope) {
    const int64_t C = v.channels, inner = v.inner;
    const NormLoops<T>& loops = norm_loops<T>();
    if (inner == 1) {
        // Rows of C channels; threads take rows (every element is independent).
        const bool relu = act == Activation::relu;
        parallel_for(v.outer, 2.0 * double(C), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
            loops.affine_rows(y + lo * C, x + lo * C, hi - lo, C, C, scale, shift, relu);
            if (act != Activation::none && !relu)
                activate(y + lo * C, y + lo * C, (hi - lo) * C, act, T(negative_slope));
        });
        return;
    }
    parallel_for(v.outer * C, 2.0 * double(inner), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t q = lo; q < hi; ++q)
            apply_run(loops, y, x, q, inner, scale[q % C], shift[q % C], act, negative_slope);
    });
}

template <typename T>
void batch_norm_forward_training(T* y, T* mean, T* var, T* invstd, T* running_mean,
                                 T* running_var, const T* x, const T* gamma, const T* beta,
                                 const ChannelView& v, double eps, double momentum, bool unbiased,
                                 Activation act, double negative_slope) {
    const int64_t C = v.channels, m = v.per_channel();
    if (v.inner == 1 || m == 0) {  // rows of channels: nothing stays in cache between the steps
        std::vector<T> scale(C), shift(C);
        batch_norm_statistics(mean, var, x, v);
        if (running_mean)
            batch_norm_update_running(running_mean, running_var, mean, var, C, m, momentum, unbiased);
        batch_norm_affine(scale.data(), shift.data(), invstd, mean, var, gamma, beta, C, eps);
        batch_norm_apply(y, x, scale.data(), shift.data(), v, act, negative_slope);
        return;
    }
    const NormLoops<T>& loops = norm_loops<T>();
    parallel_for(C, 5.0 * double(m), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
            const Moments s = channel_moments(loops, x, v, c);
            mean[c] = T(s.mean), var[c] = T(s.var);
            if (running_mean)
                update_running(running_mean, running_var, mean[c], var[c], c, m, momentum, unbiased);
            const Affine<T> a = affine(mean[c], var[c], gamma, beta, c, eps);
            invstd[c] = a.invstd;
            for (int64_t o = 0; o < v.outer; ++o)
                apply_run(loops, y, x, o * C + c, v.inner, a.scale, a.shift, act, negative_slope);
        }
    });
}

template <typename T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                         const T* relu_output, const T* mean, const T* invstd, const T* gamma,
                         const ChannelView& v, bool batch_stats) {
    const int64_t C = v.channels, inner = v.inner, m = v.per_channel();
    const NormLoops<T>& loops = norm_loops<T>();
    const bool sums = dgamma || dbeta || (dx && batch_stats);
    // From the channel's sums s1 = sum g and s2 = sum g (x - mean): the parameter gradients, and
    // dx = k g - (c1 + c2 (x - mean)) with k = gamma invstd, c1 = k dbeta / m,
    // c2 = k invstd dgamma / m (c1 = c2 = 0 with the statistics held fixed).
    struct Coefficients {
        T k, c1, c2;
    };
    auto finish = [&](int64_t c, double s1, double s2) -> Coefficients {
        const double inv = double(invstd[c]);
        const double dg = s2 * inv, db = s1;
        if (dgamma) dgamma[c] = T(dg);
        if (dbeta) dbeta[c] = T(db);
        const double k = (gamma ? double(gamma[c]) : 1.0) * inv;
        if (!batch_stats || m == 0) return {T(k), T(0), T(0)};
        return {T(k), T(k * db / double(m)), T(k * inv * dg / double(m))};
    };
    if (inner == 1) {
        parallel_for(C, 5.0 * double(m), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
            const int64_t n = hi - lo;
            std::vector<double> s1(n, 0.0), s2(n, 0.0), mu(mean + lo, mean + hi);
            std::vector<T> k(n), c1(n), c2(n);
            if (sums)
                loops.grad_sums_rows(s1.data(), s2.data(), dy + lo, x + lo,
                                     relu_output ? relu_output + lo : nullptr, v.outer, C, n,
                                     mu.data());
            for (int64_t j = 0; j < n; ++j) {
                const Coefficients f = finish(lo + j, s1[j], s2[j]);
                k[j] = f.k, c1[j] = f.c1, c2[j] = f.c2;
            }
            if (dx)
                loops.grad_input_rows(dx + lo, dy + lo, x + lo,
                                      relu_output ? relu_output + lo : nullptr, v.outer, C, n,
                                      k.data(), c1.data(), c2.data(), mean + lo, batch_stats);
        });
        return;
    }
    parallel_for(C, 5.0 * double(m), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c) {
            double s1[kLanes] = {}, s2[kLanes] = {};
            if (sums)
                for (int64_t o = 0; o < v.outer; ++o) {
                    const int64_t at = (o * C + c) * inner;
                    loops.grad_sums_run(s1, s2, dy + at, x + at,
                                        relu_output ? relu_output + at : nullptr, inner,
                                        double(mean[c]));
                }
            const Coefficients f = finish(c, lane_sum(s1), lane_sum(s2));
            if (dx)
                for (int64_t o = 0; o < v.outer; ++o) {
                    const int64_t at = (o * C + c) * inner;
                    loops.grad_input_run(dx + at, dy + at, x + at,
                                         relu_output ? relu_output + at : nullptr, inner, f.k,
                                         f.c1, f.c2, mean[c], batch_stats);
                }
        }
    });
}

// ---- layer norm ---------------------------------------------------------------------------------

template <typename T>
void layer_norm_forward(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                        int64_t rows, int64_t cols, double eps) {
    if (rows == 0 || cols == 0) return;
    const NormLoops<T>& loops = norm_loops<T>();
    std::vector<T> ones, zeros;
    if (!gamma) ones.assign(cols, T(1)), gamma = ones.data();
    if (!beta) zeros.assign(cols, T(0)), beta = zeros.data();
    parallel_for(rows, 4.0 * double(cols), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
            const T* xr = x + r * cols;
            double s1[kLanes] = {}, s2[kLanes] = {};
            const double shift = double(xr[0]);
            loops.moments_run(s1, s2, xr, cols, shift);
            const Moments s = moments(shift, lane_sum(s1), lane_sum(s2), cols);
            const T mu = T(s.mean), inv = T(1.0 / std::sqrt(s.var + eps));
            loops.layer_norm_row(y + r * cols, xr, cols, mu, inv, gamma, beta);
            if (mean) mean[r] = mu;
            if (invstd) invstd[r] = inv;
        }
    });
}

template <typename T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                         const T* invstd, const T* gamma, int64_t rows, int64_t cols) {
    if (cols == 0) return;
    if (rows == 0) {
        if (dgamma) std::fill(dgamma, dgamma + cols, T(0));
        if (dbeta) std::fill(dbeta, dbeta + cols, T(0));
        return;
    }
    const NormLoops<T>& loops = norm_loops<T>();
    std::vector<T> ones;
    if (!gamma) ones.assign(cols, T(1)), gamma = ones.data();
    const std::vector<double> gamma_d(gamma, gamma + cols);  // converted once, not per row
    // Per block of rows: its sums of dy xhat and dy, (2, cols) doubles, added in block order.
    const int64_t block = row_block(rows), blocks = (rows + block - 1) / block;
    const bool params = dgamma || dbeta;
    std::vector<double> partial(params ? size_t(blocks * 2 * cols) : 0, 0.0);
    parallel_for(blocks, 6.0 * double(block * cols), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
            double* pg = params ? partial.data() + b * 2 * cols : nullptr;
            double* pb = params ? pg + cols : nullptr;
            for (int64_t r = b * block; r < std::min(rows, (b + 1) * block); ++r) {
                const T* dyr = dy + r * cols;
                const T* xr = x + r * cols;
                const double inv = double(invstd[r]);
                // dx = invstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, from the row's
                // sums s1 = sum g, s2 = sum g (x - mean), so mean(g xhat) = s2 invstd / cols.
                double s1[kLanes] = {}, s2[kLanes] = {};
                loops.layer_norm_grad_sums(s1, s2, pg, pb, dyr, xr, gamma_d.data(), cols,
                                           double(mean[r]), inv);
                const double g_mean = lane_sum(s1) / double(cols);
                const double gx_mean = lane_sum(s2) * inv / double(cols);
                if (dx)
                    loops.layer_norm_grad_input(dx + r * cols, dyr, xr, gamma, cols, mean[r], T(inv),
                                                T(inv * g_mean), T(inv * inv * gx_mean));
            }
        }
    });
    if (!params) return;
    // Block after block into one sum per column of this thread's range (vectorised across columns).
    parallel_for(cols, 2.0 * double(blocks), kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        std::vector<double> g(hi - lo, 0.0), s(hi - lo, 0.0);
        for (int64_t b = 0; b < blocks; ++b) {
            const double* pg = partial.data() + b * 2 * cols + lo;
            const double* pb = pg + cols;
            for (int64_t j = 0; j < hi - lo; ++j) g[j] += pg[j], s[j] += pb[j];
        }
        for (int64_t j = 0; j < hi - lo; ++j) {
            if (dgamma) dgamma[lo + j] = T(g[j]);
            if (dbeta) dbeta[lo + j] = T(s[j]);
        }
    });
}

#define LAMINA_NORMALIZATION(T)                                                                   \
    template void batch_norm_statistics<T>(T*, T*, const T*, const ChannelView&);                 \
    template void batch_norm_update_running<T>(T*, T*, const T*, const T*, int64_t, int64_t,      \
                                               double, bool);                                     \
    template void batch_norm_affine<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                       int64_t, double);                                          \
    template void batch_norm_apply<T>(T*, const T*, const T*, const T*, const ChannelView&,       \
                                      Activation, double);                                        \
    template void batch_norm_forward_training<T>(T*, T*, T*, T*, T*, T*, const T*, const T*,      \
                                                 const T*, const ChannelView&, double, double,   \
                                                 bool, Activation, double);                      \
    template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,      \
                                         const T*, const T*, const ChannelView&, bool);           \
    template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,        \
                                        int64_t, double);                                         \
    template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,      \
                                         const T*, int64_t, int64_t);
LAMINA_NORMALIZATION(float)
LAMINA_NORMALIZATION(double)
#undef LAMINA_NORMALIZATION

}  // namespace lamina
