// Loss kernels. Per-row (or per-element) terms are computed in parallel into a buffer and summed
// serially in a fixed order; gradients are elementwise and so independent of the thread split.
#include "kernels/losses.h"

#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/scratch.h"
#include "kernels/activations.h"

namespace lamina {

namespace {

constexpr double kMinWorkPerThread = 1 << 15;
constexpr double kExpCost = 8;  // an exp or log, in element operations

double* scratch(int64_t n, int slot) { return thread_scratch<double>(n, slot); }

double sum_in_order(const double* v, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += v[i];
    return sum;
}

// sum_i log(s_i) for s_i >= 1 (softmax row sums), as the log of their product: one log per
// 2^900 of product rather than one per row. Both rounding errors stay near n ulp of double.
double sum_of_logs(const double* s, int64_t n) {
    double total = 0.0, product = 1.0;
    for (int64_t i = 0; i < n; ++i) {
        product *= s[i];
        if (product > 0x1p900) {
            total += std::log(product);
            product = 1.0;
        }
    }
    return total + std::log(product);
}

// The mean of n terms. body(lo, hi, terms) writes terms[lo, hi) (and the gradient's part for
// them); the ranges run in parallel, then the terms are summed in index order, so the loss is
// the same for any thread count.
template <typename Body>
double mean_of_terms(int64_t n, double work_per_term, Body&& body) {
    double* terms = scratch(n, kLossTermsScratchSlot);
    parallel_for(n, work_per_term, kMinWorkPerThread, [&](int64_t lo, int64_t hi) { body(lo, hi, terms); });
    return sum_in_order(terms, n) / double(n);
}

}  // namespace

// Row r's loss is logsumexp(z_r) - z_r[label] = (max_r - z_r[label]) + log(sum_r), from
// softmax_rows' max and sum of the row.
template <typename T>
double cross_entropy_labels(T* dz, const T* z, const int64_t* label, int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return 0.0;
    const T scale = T(1.0 / double(rows));
    double* shift = scratch(2 * rows, kLossRowsScratchSlot);  // max_r, then max_r - z_r[label]
    double* sum = shift + rows;
    parallel_for(rows, double(cols) * kExpCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        softmax_rows(dz + lo * cols, z + lo * cols, hi - lo, cols, shift + lo, sum + lo);
        for (int64_t r = lo; r < hi; ++r) {
            shift[r] -= double(z[r * cols + label[r]]);
            dz[r * cols + label[r]] -= T(1);
        }
        for (int64_t i = lo * cols; i < hi * cols; ++i) dz[i] *= scale;
    });
    return (sum_in_order(shift, rows) + sum_of_logs(sum, rows)) / double(rows);
}

template <typename T>
double cross_entropy_probs(T* dz, const T* z, const T* t, int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return 0.0;
    const T scale = T(1.0 / double(rows));
    double* max = scratch(2 * rows, kLossRowsScratchSlot);
    double* sum = max + rows;
    return mean_of_terms(rows, double(cols) * kExpCost, [&](int64_t lo, int64_t hi, double* loss) {
        softmax_rows(dz + lo * cols, z + lo * cols, hi - lo, cols, max + lo, sum + lo);
        for (int64_t r = lo; r < hi; ++r) {
            T* dz_r = dz + r * cols;
            const T* z_r = z + r * cols;
            const T* t_r = t + r * cols;
            const double logsumexp = max[r] + std::log(sum[r]);
            double row_loss = 0.0, mass = 0.0;
            for (int64_t j = 0; j < cols; ++j) {
                row_loss += double(t_r[j]) * (logsumexp - double(z_r[j]));
                mass += double(t_r[j]);
            }
            for (int64_t j = 0; j < cols; ++j) dz_r[j] = (dz_r[j] * T(mass) - t_r[j]) * scale;
            loss[r] = row_loss;
        }
    });
}

template <typename T>
double binary_cross_entropy(T* dz, const T* z, const T* t, int64_t n) {
    if (n == 0) return 0.0;
    const T scale = T(1.0 / double(n));
    return mean_of_terms(n, 2 * kExpCost, [&](int64_t lo, int64_t hi, double* loss) {
        for (int64_t i = lo; i < hi; ++i) {
            dz[i] = (sigmoid_scalar(z[i]) - t[i]) * scale;
            const double zi = z[i], ti = t[i];
            loss[i] = std::max(zi, 0.0) - zi * ti + std::log1p(std::exp(-std::fabs(zi)));
        }
    });
}

template <typename T>
double mse(T* dp, const T* p, const T* t, int64_t n) {
    if (n == 0) return 0.0;
    double sum = 0.0;  // serial: the loss must not depend on the thread count
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(p[i]) - double(t[i]);
        sum += d * d;
    }
    const T scale = T(2.0 / double(n));
    parallel_for(n, 1, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) dp[i] = (p[i] - t[i]) * scale;
    });
    return sum / double(n);
}

namespace {
double clip_probability(double p) {
    return std::min(std::max(p, kProbabilityEps), 1.0 - kProbabilityEps);
}
}  // namespace

template <typename T>
double probability_cross_entropy_labels(T* dp, const T* p, const int64_t* label, int64_t rows,
                                        int64_t cols) {
    if (rows == 0) return 0.0;
    double loss = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < cols; ++j) dp[r * cols + j] = T(0);
        const double pc = clip_probability(double(p[r * cols + label[r]]));
        dp[r * cols + label[r]] = T(-1.0 / (pc * double(rows)));
        loss -= std::log(pc);
    }
    return loss / double(rows);
}

template <typename T>
double probability_cross_entropy_probs(T* dp, const T* p, const T* t, int64_t rows, int64_t cols) {
    if (rows == 0) return 0.0;
    double loss = 0.0;
    for (int64_t i = 0; i < rows * cols; ++i) {
        const double pc = clip_probability(double(p[i])), ti = double(t[i]);
        dp[i] = T(-ti / (pc * double(rows)));
        loss -= ti * std::log(pc);
    }
    return loss / double(rows);
}

template <typename T>
double probability_binary_cross_entropy(T* dp, const T* p, const T* t, int64_t n) {
    if (n == 0) return 0.0;
    double loss = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double pc = clip_probability(double(p[i])), ti = double(t[i]);
        dp[i] = T((pc - ti) / (double(n) * pc * (1.0 - pc)));
        loss -= ti * std::log(pc) + (1.0 - ti) * std::log1p(-pc);
    }
    return loss / double(n);
}

template <typename T>
double nll(T* dlogp, const T* logp, const int64_t* label, int64_t rows, int64_t cols) {
    if (rows == 0) return 0.0;
    const T grad = -T(1.0 / double(rows));
    std::fill(dlogp, dlogp + rows * cols, T(0));
    double sum = 0.0;  // in row order: the loss does not depend on the thread count
    for (int64_t r = 0; r < rows; ++r) {
        sum += double(logp[r * cols + label[r]]);
        dlogp[r * cols + label[r]] = grad;
    }
    return -sum / double(rows);
}

#define LAMINA_INSTANTIATE(T)                                                                \
    template double cross_entropy_labels<T>(T*, const T*, const int64_t*, int64_t, int64_t); \
    template double cross_entropy_probs<T>(T*, const T*, const T*, int64_t, int64_t);        \
    template double binary_cross_entropy<T>(T*, const T*, const T*, int64_t);                \
    template double mse<T>(T*, const T*, const T*, int64_t);                                 \
    template double probability_cross_entropy_labels<T>(T*, const T*, const int64_t*, int64_t, int64_t); \
    template double probability_cross_entropy_probs<T>(T*, const T*, const T*, int64_t, int64_t); \
    template double probability_binary_cross_entropy<T>(T*, const T*, const T*, int64_t);     \
    template double nll<T>(T*, const T*, const int64_t*, int64_t, int64_t);
LAMINA_INSTANTIATE(float)
LAMINA_INSTANTIATE(double)
#undef LAMINA_INSTANTIATE

}  // namespace lamina
