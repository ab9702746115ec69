// The inner loops of batch and layer normalization (kernels/normalization.cpp), written once and
// compiled per vector ISA: normalization_avx2.cpp and normalization_avx512.cpp build this body with
// their flags, normalization.cpp with the baseline's, and the kernels pick the table of the ISA in
// use (core/isa.h). Every loop is a plain loop over raw pointers: no library calls and no inline
// function with external linkage, so that no wide instruction can reach baseline code.
//
// Sums run in double in a fixed order that is the same for every ISA: a run of n values adds
// element i into lane i % kLanes of kLanes partial sums (the caller adds the lanes in order at the
// end), and a row loop adds row after row into one sum per column. Nothing is contracted into an
// FMA except where the formula says fma (these files build with -ffp-contract=off), so the three
// builds round alike and every result is the same on every kernel path.
#pragma once
#include <cstdint>

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
    // With g = dy[j] * gamma[j] (in double): s1[j % kLanes] += g, s2[j % kLanes] += g * (x[j] - mean)
    void (*layer_norm_grad_sums)(double* s1, double* s2, const T* dy, const T* x, const T* gamma,
                                 int64_t n, double mean);
    // With xm = x[j] - mean: dgamma[j] += dy[j] * xm * invstd, dbeta[j] += dy[j] (in double, each
    // skipped when null), then dx[j] = c0 * (dy[j] * gamma[j]) - (c1 + c2 * xm) (dx may be dy,
    // or null)
    void (*layer_norm_grad_row)(T* dx, double* dgamma, double* dbeta, const T* dy, const T* x,
                                const T* gamma, int64_t n, T mean, double invstd, T c0, T c1, T c2);
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

template <typename T>
void moments_run(double* __restrict s1, double* __restrict s2, const T* __restrict x, int64_t n,
                 double shift) {
    double a[kLanes], b[kLanes];
    for (int l = 0; l < kLanes; ++l) a[l] = s1[l], b[l] = s2[l];
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const double d = double(x[i + l]) - shift;
            a[l] += d;
            b[l] += d * d;
        }
    for (int l = 0; i + l < n; ++l) {
        const double d = double(x[i + l]) - shift;
        a[l] += d;
        b[l] += d * d;
    }
    for (int l = 0; l < kLanes; ++l) s1[l] = a[l], s2[l] = b[l];
}

template <typename T>
void moments_rows(double* __restrict s1, double* __restrict s2, const T* __restrict x,
                  int64_t rows, int64_t stride, int64_t n, const double* __restrict shift) {
    for (int64_t r = 0; r < rows; ++r) {
        const T* __restrict xr = x + r * stride;
        for (int64_t j = 0; j < n; ++j) {
            const double d = double(xr[j]) - shift[j];
            s1[j] += d;
            s2[j] += d * d;
        }
    }
}

template <typename T, bool Relu>
inline void affine(T* __restrict y, const T* __restrict x, int64_t n, T scale, T shift) {
    for (int64_t i = 0; i < n; ++i) {
        const T v = fma_(x[i], scale, shift);
        y[i] = Relu ? relu_(v) : v;
    }
}

// y may be x: the in-place case gets its own loop (restrict would be a lie).
template <typename T, bool Relu>
inline void affine_inplace(T* y, int64_t n, T scale, T shift) {
    for (int64_t i = 0; i < n; ++i) {
        const T v = fma_(y[i], scale, shift);
        y[i] = Relu ? relu_(v) : v;
    }
}

template <typename T>
void affine_run(T* y, const T* x, int64_t n, T scale, T shift, bool relu) {
    if (y == x)
        relu ? affine_inplace<T, true>(y, n, scale, shift) : affine_inplace<T, false>(y, n, scale, shift);
    else
        relu ? affine<T, true>(y, x, n, scale, shift) : affine<T, false>(y, x, n, scale, shift);
}

template <typename T, bool Relu>
inline void affine_columns(T* __restrict y, const T* __restrict x, int64_t n,
                           const T* __restrict scale, const T* __restrict shift) {
    for (int64_t j = 0; j < n; ++j) {
        const T v = fma_(x[j], scale[j], shift[j]);
        y[j] = Relu ? relu_(v) : v;
    }
}

template <typename T, bool Relu>
inline void affine_columns_inplace(T* y, int64_t n, const T* __restrict scale,
                                   const T* __restrict shift) {
    for (int64_t j = 0; j < n; ++j) {
        const T v = fma_(y[j], scale[j], shift[j]);
        y[j] = Relu ? relu_(v) : v;
    }
}

template <typename T>
void affine_rows(T* y, const T* x, int64_t rows, int64_t stride, int64_t n, const T* scale,
                 const T* shift, bool relu) {
    for (int64_t r = 0; r < rows; ++r) {
        T* yr = y + r * stride;
        const T* xr = x + r * stride;
        if (yr == xr)
            relu ? affine_columns_inplace<T, true>(yr, n, scale, shift)
                 : affine_columns_inplace<T, false>(yr, n, scale, shift);
        else
            relu ? affine_columns<T, true>(yr, xr, n, scale, shift)
                 : affine_columns<T, false>(yr, xr, n, scale, shift);
    }
}

template <typename T>
void grad_sums_run(double* __restrict s1, double* __restrict s2, const T* __restrict dy,
                   const T* __restrict x, const T* __restrict mask, int64_t n, double mean) {
    double a[kLanes], b[kLanes];
    for (int l = 0; l < kLanes; ++l) a[l] = s1[l], b[l] = s2[l];
    int64_t i = 0;
    if (mask) {
        for (; i + kLanes <= n; i += kLanes)
            for (int l = 0; l < kLanes; ++l) {
                const double g = mask[i + l] > T(0) ? double(dy[i + l]) : 0.0;
                a[l] += g;
                b[l] += g * (double(x[i + l]) - mean);
            }
    } else {
        for (; i + kLanes <= n; i += kLanes)
            for (int l = 0; l < kLanes; ++l) {
                const double g = double(dy[i + l]);
                a[l] += g;
                b[l] += g * (double(x[i + l]) - mean);
            }
    }
    for (int l = 0; i + l < n; ++l) {
        const double g = double(masked(dy[i + l], mask, i + l));
        a[l] += g;
        b[l] += g * (double(x[i + l]) - mean);
    }
    for (int l = 0; l < kLanes; ++l) s1[l] = a[l], s2[l] = b[l];
}

template <typename T>
void grad_sums_rows(double* __restrict s1, double* __restrict s2, const T* __restrict dy,
                    const T* __restrict x, const T* __restrict mask, int64_t rows, int64_t stride,
                    int64_t n, const double* __restrict mean) {
    for (int64_t r = 0; r < rows; ++r) {
        const T* __restrict dyr = dy + r * stride;
        const T* __restrict xr = x + r * stride;
        if (mask) {
            const T* __restrict mr = mask + r * stride;
            for (int64_t j = 0; j < n; ++j) {
                const double g = mr[j] > T(0) ? double(dyr[j]) : 0.0;
                s1[j] += g;
                s2[j] += g * (double(xr[j]) - mean[j]);
            }
        } else {
            for (int64_t j = 0; j < n; ++j) {
                const double g = double(dyr[j]);
                s1[j] += g;
                s2[j] += g * (double(xr[j]) - mean[j]);
            }
        }
    }
}

// dx may be dy: each element is read before it is written, at the same index.
template <typename T>
void grad_input_run(T* dx, const T* dy, const T* __restrict x, const T* __restrict mask,
                    int64_t n, T k, T c1, T c2, T mean, bool centered) {
    if (centered)
        for (int64_t i = 0; i < n; ++i) dx[i] = k * masked(dy[i], mask, i) - (c1 + c2 * (x[i] - mean));
    else
        for (int64_t i = 0; i < n; ++i) dx[i] = k * masked(dy[i], mask, i);
}

template <typename T>
void grad_input_rows(T* dx, const T* dy, const T* __restrict x, const T* __restrict mask,
                     int64_t rows, int64_t stride, int64_t n, const T* __restrict k,
                     const T* __restrict c1, const T* __restrict c2, const T* __restrict mean,
                     bool centered) {
    for (int64_t r = 0; r < rows; ++r) {
        T* dxr = dx + r * stride;
        const T* dyr = dy + r * stride;
        const T* __restrict xr = x + r * stride;
        const T* __restrict mr = mask ? mask + r * stride : nullptr;
        if (centered)
            for (int64_t j = 0; j < n; ++j)
                dxr[j] = k[j] * masked(dyr[j], mr, j) - (c1[j] + c2[j] * (xr[j] - mean[j]));
        else
            for (int64_t j = 0; j < n; ++j) dxr[j] = k[j] * masked(dyr[j], mr, j);
    }
}

template <typename T>
void layer_norm_row(T* y, const T* x, int64_t n, T mean, T invstd, const T* __restrict gamma,
                    const T* __restrict beta) {
    for (int64_t j = 0; j < n; ++j) y[j] = fma_((x[j] - mean) * invstd, gamma[j], beta[j]);
}

template <typename T>
void layer_norm_grad_sums(double* __restrict s1, double* __restrict s2, const T* __restrict dy,
                          const T* __restrict x, const T* __restrict gamma, int64_t n,
                          double mean) {
    double a[kLanes], b[kLanes];
    for (int l = 0; l < kLanes; ++l) a[l] = s1[l], b[l] = s2[l];
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) {
            const double g = double(dy[i + l]) * double(gamma[i + l]);
            a[l] += g;
            b[l] += g * (double(x[i + l]) - mean);
        }
    for (int l = 0; i + l < n; ++l) {
        const double g = double(dy[i + l]) * double(gamma[i + l]);
        a[l] += g;
        b[l] += g * (double(x[i + l]) - mean);
    }
    for (int l = 0; l < kLanes; ++l) s1[l] = a[l], s2[l] = b[l];
}

template <typename T>
void layer_norm_grad_row(T* dx, double* __restrict dgamma, double* __restrict dbeta, const T* dy,
                         const T* __restrict x, const T* __restrict gamma, int64_t n, T mean,
                         double invstd, T c0, T c1, T c2) {
    if (dgamma || dbeta)
        for (int64_t j = 0; j < n; ++j) {
            const double d = double(dy[j]);
            if (dgamma) dgamma[j] += d * ((double(x[j]) - double(mean)) * invstd);
            if (dbeta) dbeta[j] += d;
        }
    if (dx)
        for (int64_t j = 0; j < n; ++j) dx[j] = c0 * (dy[j] * gamma[j]) - (c1 + c2 * (x[j] - mean));
}

template <typename T>
constexpr NormLoops<T> table() {
    return {moments_run<T>,    moments_rows<T>,   affine_run<T>,
            affine_rows<T>,    grad_sums_run<T>,  grad_sums_rows<T>,
            grad_input_run<T>, grad_input_rows<T>, layer_norm_row<T>,
            layer_norm_grad_sums<T>, layer_norm_grad_row<T>};
}

}  // namespace norm_body
}  // namespace

}  // namespace lamina
