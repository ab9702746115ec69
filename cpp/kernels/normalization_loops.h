// The inner loops of batch and layer normalization (kernels/normalization.cpp), written once and
// compiled per vector ISA: normalization_avx2.cpp and normalization_avx512.cpp build this body with
// their flags, normalization.cpp with the baseline's, and the kernels pick the table of the ISA in
// use (core/isa.h). Every loop is a plain loop over raw pointers with internal linkage, so that no
// wide instruction can reach baseline code (the baseline's fma is libm's, as correctly rounded as
// the instruction the AVX builds use).
//
// Sums run in double in a fixed order that is the same for every ISA: a run of n values adds
// element i into lane i % kLanes of kLanes partial sums (the caller adds the lanes in order at the
// end), and a row loop adds row after row into one sum per column. Nothing is contracted into an
// FMA except where the formula says fma (these files build with -ffp-contract=off), so the three
// builds round alike and every result is the same on every kernel path.
#pragma once
#include <cstdint>
#include <type_traits>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace lamina {

constexpr int kLanes = 16;  // partial sums of a run: two AVX-512 or four AVX2 vectors of doubles

// One ISA's loops over a run (n contiguous values of one channel or one row) or over rows (`rows`
// rows of n contiguous values, `stride` apart, one column per channel: channels_last).
template <typename T>
struct NormLoops {
    // s1[i % kLanes] += x[i] - shift, s2[i % kLanes] += (x[i] - shift)^2        s1, s2 (kLanes,)
    void (*moments_run)(double* s1, double* s2, const T* x, int64_t n, double shift);
    // s1[j] += x[r, j] - shift[j], s2[j] += (x[r, j] - shift[j])^2               s1, s2, shift (n,)
    void (*moments_rows)(double* s1, double* s2, const T* x, int64_t rows, int64_t stride,
                         int64_t n, const double* shift);
    // y[i] = act(fma(x[i], scale, shift)), act none or relu
    void (*affine_run)(T* y, const T* x, int64_t n, T scale, T shift, bool relu);
    // y[r, j] = act(fma(x[r, j], scale[j], shift[j]))
    void (*affine_rows)(T* y, const T* x, int64_t rows, int64_t stride, int64_t n, const T* scale,
                        const T* shift, bool relu);
    // With g = dy (0 where mask, if given, is not > 0): s1[i % kLanes] += g,
    // s2[i % kLanes] += g * (x[i] - mean)
    void (*grad_sums_run)(double* s1, double* s2, const T* dy, const T* x, const T* mask,
                          int64_t n, double mean);
    // s1[j] += g[r, j], s2[j] += g[r, j] * (x[r, j] - mean[j])                   s1, s2, mean (n,)
    void (*grad_sums_rows)(double* s1, double* s2, const T* dy, const T* x, const T* mask,
                           int64_t rows, int64_t stride, int64_t n, const double* mean);
    // dx[i] = k * g - (c1 + c2 * (x[i] - mean)), or k * g when !centered (dx may be dy)
    void (*grad_input_run)(T* dx, const T* dy, const T* x, const T* mask, int64_t n, T k, T c1,
                           T c2, T mean, bool centered);
    // The same per column j, with k, c1, c2, mean (n,)
    void (*grad_input_rows)(T* dx, const T* dy, const T* x, const T* mask, int64_t rows,
                            int64_t stride, int64_t n, const T* k, const T* c1, const T* c2,
                            const T* mean, bool centered);
    // y[j] = fma((x[j] - mean) * invstd, gamma[j], beta[j])                  gamma, beta (n,)
    void (*layer_norm_row)(T* y, const T* x, int64_t n, T mean, T invstd, const T* gamma,
                           const T* beta);
    // With g = dy[j] gamma[j] and xm = x[j] - mean (in double): s1[j % kLanes] += g,
    // s2[j % kLanes] += g xm, and when dgamma is given, dgamma[j] += dy[j] (xm invstd) and
    // dbeta[j] += dy[j]                                                       dgamma, dbeta (n,)
    void (*layer_norm_grad_sums)(double* s1, double* s2, double* dgamma, double* dbeta,
                                 const T* dy, const T* x, const double* gamma, int64_t n,
                                 double mean, double invstd);
    // dx[j] = c0 (dy[j] gamma[j]) - (c1 + c2 (x[j] - mean)) (dx may be dy)
    void (*layer_norm_grad_input)(T* dx, const T* dy, const T* x, const T* gamma, int64_t n,
                                  T mean, T c0, T c1, T c2);
};

const NormLoops<float>& norm_loops_f32();  // the table of the ISA in use
const NormLoops<double>& norm_loops_f64();
template <typename T>
const NormLoops<T>& norm_loops();

// Per-ISA tables (defined in the per-ISA files, built with those files' flags).
const NormLoops<float>& norm_loops_f32_avx2();
const NormLoops<double>& norm_loops_f64_avx2();
const NormLoops<float>& norm_loops_f32_avx512();
const NormLoops<double>& norm_loops_f64_avx512();

// Internal linkage: each file compiled with other ISA flags has its own copy.
namespace {
namespace norm_body {

inline float fma_(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline double fma_(double a, double b, double c) { return __builtin_fma(a, b, c); }

template <typename T>
inline T relu_(T v) { return v < T(0) ? T(0) : v; }  // as core/activation.h's relu_scalar

template <typename T>
inline T masked(T dy, const T* mask, int64_t i) { return mask ? (mask[i] > T(0) ? dy : T(0)) : dy; }

// ---- sums over a run, in kLanes lanes -----------------------------------------------------------
//
// Eight doubles as one value (GCC/Clang vector extensions): each build maps it onto its own
// registers (four SSE2, two AVX2 or one AVX-512). A run's main loop takes kLanes = 16 values at a
// time as two such vectors; its tail adds element i into lane i - (start of the tail). Both do the
// same operations per element, so which elements a vector takes never changes a bit.
typedef double d8 __attribute__((vector_size(64)));
typedef float f8 __attribute__((vector_size(32)));

inline d8 load8(const double* p) {
    d8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
inline d8 load8(const float* p) {
#ifdef __AVX512F__
    return d8(_mm512_cvtps_pd(_mm256_loadu_ps(p)));  // one instruction; GCC's own split it in two
#else
    f8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, d8);
#endif
}
inline void store8(double* p, d8 v) { __builtin_memcpy(p, &v, sizeof v); }

// Asks for the cache lines of 16 values kAhead bytes past p. The passes that first read an array
// from memory stream two or three arrays at once, which the hardware prefetcher alone left waiting
// on memory (a third of layer norm's backward).
constexpr int64_t kAhead = 4096;
template <typename T>
inline void prefetch16(const T* p) {
    const char* c = reinterpret_cast<const char*>(p) + kAhead;
    for (int64_t at = 0; at < int64_t(16 * sizeof(T)); at += 64) __builtin_prefetch(c + at);
}

// The same for the n values of a row at p: the row kAhead bytes further on.
template <typename T>
inline void prefetch_row(const T* p, int64_t n) {
    const char* c = reinterpret_cast<const char*>(p) + kAhead;
    for (int64_t at = 0; at < int64_t(n * sizeof(T)); at += 64) __builtin_prefetch(c + at);
}

// s1[i % kLanes] += t1(i), s2[i % kLanes] += t2(i) for i in [0, n), where terms(i, t1, t2) gives
// the terms of the 8 elements from i (as d8) or of element i alone (as double); ahead(i) prefetches
// what the 16 values from i read.
template <typename Terms, typename Ahead>
inline void lane_sums(double* s1, double* s2, int64_t n, Terms terms, Ahead ahead) {
    d8 a0 = load8(s1), a1 = load8(s1 + 8), b0 = load8(s2), b1 = load8(s2 + 8);
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        ahead(i);
        d8 t1, t2;
        terms(i, t1, t2);
        a0 += t1, b0 += t2;
        terms(i + 8, t1, t2);
        a1 += t1, b1 += t2;
    }
    store8(s1, a0), store8(s1 + 8, a1), store8(s2, b0), store8(s2 + 8, b1);
    for (int l = 0; i + l < n; ++l) {
        double t1, t2;
        terms(i + l, t1, t2);
        s1[l] += t1, s2[l] += t2;
    }
}

template <typename T>
void moments_run(double* s1, double* s2, const T* x, int64_t n, double shift) {
    lane_sums(s1, s2, n, [&](int64_t i, auto& t1, auto& t2) {
        if constexpr (sizeof t1 == sizeof(d8)) {
            const d8 d = load8(x + i) - shift;
            t1 = d, t2 = d * d;
        } else {
            const double d = double(x[i]) - shift;
            t1 = d, t2 = d * d;
        }
    }, [&](int64_t i) { prefetch16(x + i); });
}

// g = dy (0 where mask, if given, is not > 0): t1 = g, t2 = g (x - mean).
template <typename T>
void grad_sums_run(double* s1, double* s2, const T* dy, const T* x, const T* mask, int64_t n,
                   double mean) {
    lane_sums(s1, s2, n, [&](int64_t i, auto& t1, auto& t2) {
        if constexpr (sizeof t1 == sizeof(d8)) {
            d8 g = load8(dy + i);
            if (mask) g = load8(mask + i) > 0.0 ? g : d8{};
            t1 = g, t2 = g * (load8(x + i) - mean);
        } else {
            const double g = double(masked(dy[i], mask, i));
            t1 = g, t2 = g * (double(x[i]) - mean);
        }
    }, [&](int64_t i) {
        prefetch16(dy + i), prefetch16(x + i);
        if (mask) prefetch16(mask + i);
    });
}

// g = dy gamma: t1 = g, t2 = g (x - mean); the columns' dgamma and dbeta on the way.
template <typename T>
void layer_norm_grad_sums(double* s1, double* s2, double* dgamma, double* dbeta, const T* dy,
                          const T* x, const double* gamma, int64_t n, double mean, double invstd) {
    lane_sums(s1, s2, n, [&](int64_t i, auto& t1, auto& t2) {
        if constexpr (sizeof t1 == sizeof(d8)) {
            const d8 d = load8(dy + i), xm = load8(x + i) - mean;
            const d8 g = d * load8(gamma + i);
            t1 = g, t2 = g * xm;
            if (dgamma) {
                store8(dgamma + i, load8(dgamma + i) + d * (xm * invstd));
                store8(dbeta + i, load8(dbeta + i) + d);
            }
        } else {
            const double d = double(dy[i]), xm = double(x[i]) - mean;
            const double g = d * gamma[i];
            t1 = g, t2 = g * xm;
            if (dgamma) {
                dgamma[i] += d * (xm * invstd);
                dbeta[i] += d;
            }
        }
    }, [&](int64_t i) { prefetch16(dy + i), prefetch16(x + i); });
}

// ---- sums over rows, one per column -------------------------------------------------------------

// Four rows per sweep of the columns: each sum is loaded and stored once per four additions (in
// row order, as one row at a time would add them).
constexpr int64_t kRowsPerSweep = 4;

template <typename T>
void moments_rows(double* __restrict s1, double* __restrict s2, const T* __restrict x,
                  int64_t rows, int64_t stride, int64_t n, const double* __restrict shift) {
    int64_t r = 0;
    for (; r + kRowsPerSweep <= rows; r += kRowsPerSweep) {
        const T* __restrict xr = x + r * stride;
        for (int64_t q = 0; q < kRowsPerSweep; ++q) prefetch_row(xr + q * stride, n);
        for (int64_t j = 0; j < n; ++j) {
            double a = s1[j], b = s2[j];
            for (int64_t q = 0; q < kRowsPerSweep; ++q) {
                const double d = double(xr[q * stride + j]) - shift[j];
                a += d;
                b += d * d;
            }
            s1[j] = a, s2[j] = b;
        }
    }
    for (; r < rows; ++r) {
        const T* __restrict xr = x + r * stride;
        for (int64_t j = 0; j < n; ++j) {
            const double d = double(xr[j]) - shift[j];
            s1[j] += d;
            s2[j] += d * d;
        }
    }
}

template <typename T, bool Masked>
void grad_sums_rows_of(double* __restrict s1, double* __restrict s2, const T* __restrict dy,
                       const T* __restrict x, const T* __restrict mask, int64_t rows,
                       int64_t stride, int64_t n, const double* __restrict mean) {
    auto g_at = [&](int64_t i) { return Masked && !(mask[i] > T(0)) ? 0.0 : double(dy[i]); };
    int64_t r = 0;
    for (; r + kRowsPerSweep <= rows; r += kRowsPerSweep) {
        const int64_t at = r * stride;
        for (int64_t q = 0; q < kRowsPerSweep; ++q) {
            prefetch_row(dy + at + q * stride, n), prefetch_row(x + at + q * stride, n);
            if (Masked) prefetch_row(mask + at + q * stride, n);
        }
        for (int64_t j = 0; j < n; ++j) {
            double a = s1[j], b = s2[j];
            for (int64_t q = 0; q < kRowsPerSweep; ++q) {
                const double g = g_at(at + q * stride + j);
                a += g;
                b += g * (double(x[at + q * stride + j]) - mean[j]);
            }
            s1[j] = a, s2[j] = b;
        }
    }
    for (; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j) {
            const double g = g_at(r * stride + j);
            s1[j] += g;
            s2[j] += g * (double(x[r * stride + j]) - mean[j]);
        }
}

template <typename T>
void grad_sums_rows(double* s1, double* s2, const T* dy, const T* x, const T* mask, int64_t rows,
                    int64_t stride, int64_t n, const double* mean) {
    if (mask)
        grad_sums_rows_of<T, true>(s1, s2, dy, x, mask, rows, stride, n, mean);
    else
        grad_sums_rows_of<T, false>(s1, s2, dy, x, mask, rows, stride, n, mean);
}

// ---- elementwise passes -------------------------------------------------------------------------
//
// y[i] = f(a[i], i) for i in [0, n), where y may be a (dx may be dy): the in-place case gets its own
// loop, so that neither needs a run-time overlap check to vectorise.
template <typename T, typename F>
inline void map_apart(T* __restrict y, const T* __restrict a, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], i);
}
template <typename T, typename F>
inline void map_inplace(T* y, int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(y[i], i);
}
template <typename T, typename F>
inline void map(T* y, const T* a, int64_t n, F f) {
    if (y == a)
        map_inplace(y, n, f);
    else
        map_apart(y, a, n, f);
}

template <typename T, bool Relu>
inline T affine1(T x, T scale, T shift) {
    const T v = fma_(x, scale, shift);
    return Relu ? relu_(v) : v;
}

template <typename T>
void affine_run(T* y, const T* x, int64_t n, T scale, T shift, bool relu) {
    if (relu)
        map(y, x, n, [=](T v, int64_t) { return affine1<T, true>(v, scale, shift); });
    else
        map(y, x, n, [=](T v, int64_t) { return affine1<T, false>(v, scale, shift); });
}

// The row loops take restrict pointers, with the in-place case (y = x, dx = dy) in its own loop: a
// lambda per row (as map does for runs) paid a run-time overlap check on every short row.
template <typename T, bool Relu>
void affine_rows_apart(T* __restrict y, const T* __restrict x, int64_t rows, int64_t stride,
                       int64_t n, const T* __restrict scale, const T* __restrict shift) {
    for (int64_t r = 0; r < rows; ++r) {
        prefetch_row(x + r * stride, n);
        for (int64_t j = 0; j < n; ++j)
            y[r * stride + j] = affine1<T, Relu>(x[r * stride + j], scale[j], shift[j]);
    }
}

template <typename T, bool Relu>
void affine_rows_inplace(T* y, int64_t rows, int64_t stride, int64_t n, const T* __restrict scale,
                         const T* __restrict shift) {
    for (int64_t r = 0; r < rows; ++r) {
        prefetch_row(y + r * stride, n);
        for (int64_t j = 0; j < n; ++j)
            y[r * stride + j] = affine1<T, Relu>(y[r * stride + j], scale[j], shift[j]);
    }
}

template <typename T>
void affine_rows(T* y, const T* x, int64_t rows, int64_t stride, int64_t n, const T* scale,
                 const T* shift, bool relu) {
    if (y == x)
        relu ? affine_rows_inplace<T, true>(y, rows, stride, n, scale, shift)
             : affine_rows_inplace<T, false>(y, rows, stride, n, scale, shift);
    else
        relu ? affine_rows_apart<T, true>(y, x, rows, stride, n, scale, shift)
             : affine_rows_apart<T, false>(y, x, rows, stride, n, scale, shift);
}

template <typename T>
void grad_input_run(T* dx, const T* dy, const T* x, const T* mask, int64_t n, T k, T c1, T c2,
                    T mean, bool centered) {
    if (!centered)
        map(dx, dy, n, [=](T g, int64_t i) { return k * masked(g, mask, i); });
    else if (mask)
        map(dx, dy, n, [=](T g, int64_t i) {
            return k * (mask[i] > T(0) ? g : T(0)) - (c1 + c2 * (x[i] - mean));
        });
    else
        map(dx, dy, n, [=](T g, int64_t i) { return k * g - (c1 + c2 * (x[i] - mean)); });
}

// dx = k g - (c1 + c2 (x - mean)) per column (or k g when !Centered), g = dy masked; dy(i) reads
// the gradient at offset i (dy apart, or dx itself in place), whose rows start at `grad`.
template <typename T, bool Centered, typename G, typename Out>
inline void grad_input_rows_body(Out dx, G dy, const T* grad, const T* __restrict x,
                                 const T* __restrict mask,
                                 int64_t rows, int64_t stride, int64_t n, const T* __restrict k,
                                 const T* __restrict c1, const T* __restrict c2,
                                 const T* __restrict mean) {
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t at = r * stride;
        prefetch_row(grad + at, n), prefetch_row(x + at, n);
        if (mask) prefetch_row(mask + at, n);
        auto row = [&](auto masked_row) {
            for (int64_t j = 0; j < n; ++j) {
                const T g = masked_row ? (mask[at + j] > T(0) ? dy(at + j) : T(0)) : dy(at + j);
                dx[at + j] = Centered ? k[j] * g - (c1[j] + c2[j] * (x[at + j] - mean[j])) : k[j] * g;
            }
        };
        if (mask)  // one loop each, the test out of it
            row(std::true_type{});
        else
            row(std::false_type{});
    }
}

template <typename T, bool Centered>
void grad_input_rows_apart(T* __restrict dx, const T* __restrict dy, const T* __restrict x,
                           const T* __restrict mask, int64_t rows, int64_t stride, int64_t n,
                           const T* __restrict k, const T* __restrict c1, const T* __restrict c2,
                           const T* __restrict mean) {
    grad_input_rows_body<T, Centered>(dx, [=](int64_t i) { return dy[i]; }, dy, x, mask, rows,
                                      stride, n, k, c1, c2, mean);
}

template <typename T, bool Centered>
void grad_input_rows_inplace(T* dx, const T* __restrict x, const T* __restrict mask, int64_t rows,
                             int64_t stride, int64_t n, const T* __restrict k,
                             const T* __restrict c1, const T* __restrict c2,
                             const T* __restrict mean) {
    grad_input_rows_body<T, Centered>(dx, [=](int64_t i) { return dx[i]; }, dx, x, mask, rows,
                                      stride, n, k, c1, c2, mean);
}

template <typename T>
void grad_input_rows(T* dx, const T* dy, const T* x, const T* mask, int64_t rows, int64_t stride,
                     int64_t n, const T* k, const T* c1, const T* c2, const T* mean,
                     bool centered) {
    if (dx == dy)
        centered ? grad_input_rows_inplace<T, true>(dx, x, mask, rows, stride, n, k, c1, c2, mean)
                 : grad_input_rows_inplace<T, false>(dx, x, mask, rows, stride, n, k, c1, c2, mean);
    else
        centered ? grad_input_rows_apart<T, true>(dx, dy, x, mask, rows, stride, n, k, c1, c2, mean)
                 : grad_input_rows_apart<T, false>(dx, dy, x, mask, rows, stride, n, k, c1, c2, mean);
}

template <typename T>
void layer_norm_row(T* y, const T* x, int64_t n, T mean, T invstd, const T* gamma,
                    const T* beta) {
    map(y, x, n, [=](T v, int64_t j) { return fma_((v - mean) * invstd, gamma[j], beta[j]); });
}

template <typename T>
void layer_norm_grad_input(T* dx, const T* dy, const T* x, const T* gamma, int64_t n, T mean,
                           T c0, T c1, T c2) {
    map(dx, dy, n, [=](T d, int64_t j) { return c0 * (d * gamma[j]) - (c1 + c2 * (x[j] - mean)); });
}

template <typename T>
constexpr NormLoops<T> table() {
    return {moments_run<T>,    moments_rows<T>,   affine_run<T>,
            affine_rows<T>,    grad_sums_run<T>,  grad_sums_rows<T>,
            grad_input_run<T>, grad_input_rows<T>, layer_norm_row<T>,
            layer_norm_grad_sums<T>, layer_norm_grad_input<T>};
}

}  // namespace norm_body
}  // namespace

}  // namespace lamina
