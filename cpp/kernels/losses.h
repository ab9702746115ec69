// Losses fused with their gradients: one pass gives the mean loss and dL/d(input).
// Row losses are summed in row order in double, so the loss is the same for any thread count.
#pragma once
#include <cstdint>

namespace lamina {

// The losses a plan can end with (python/checks.cpp holds their names).
enum class LossKind : int {
    cross_entropy = 0,                     // from logits (labels or probability rows)
    binary_cross_entropy = 1,              // from logits
    mse = 2,
    probability_cross_entropy = 3,         // on a softmax output (Keras, from_logits=False)
    probability_binary_cross_entropy = 4,  // on a sigmoid output
    nll = 5,                               // on a log_softmax output, with labels
};

// Cross-entropy from logits with integer labels: loss = mean_r (logsumexp(z_r) - z_r[label_r]),
// dz = (softmax(z) - onehot(label)) / rows. Labels must be in [0, cols) (checked by the caller).
template <typename T>
double cross_entropy_labels(T* dz,                 // dz is (rows, cols)
                            const T* z,            // z is (rows, cols): logits
                            const int64_t* label,  // label is (rows,)
                            int64_t rows, int64_t cols);

// Cross-entropy from logits with target distributions t (one-hot or probabilities):
// loss = mean_r sum_c t_rc (logsumexp(z_r) - z_rc), dz = (softmax(z) * sum_c t_rc - t) / rows.
template <typename T>
double cross_entropy_probs(T* dz, const T* z, const T* t,  // all (rows, cols)
                           int64_t rows, int64_t cols);

// Binary cross-entropy from logits, mean over all n elements, in the stable form
// max(z, 0) - z t + log1p(exp(-|z|)); dz = (sigmoid(z) - t) / n.
template <typename T>
double binary_cross_entropy(T* dz, const T* z, const T* t, int64_t n);  // all (n,)

// Mean squared error: loss = mean (p - t)^2, dp = 2 (p - t) / n.
template <typename T>
double mse(T* dp, const T* p, const T* t, int64_t n);  // all (n,)

// Losses on probabilities (a softmax or sigmoid output), as Keras computes them with
// from_logits=False: p is clipped to [kProbabilityEps, 1 - kProbabilityEps] in double first.
constexpr double kProbabilityEps = 1e-7;

// loss = -mean_r sum_c t_rc log p_rc; dp = -t / (p * rows). Labels stand for one-hot rows.
template <typename T>
double probability_cross_entropy_labels(T* dp, const T* p, const int64_t* label, int64_t rows,
                                        int64_t cols);  // dp, p are (rows, cols); label (rows,)
template <typename T>
double probability_cross_entropy_probs(T* dp, const T* p, const T* t, int64_t rows,
                                       int64_t cols);  // all (rows, cols)

// Negative log-likelihood of log-probabilities (PyTorch NLLLoss, mean reduction):
// loss = -mean_r logp[r, label_r]; dlogp = -onehot(label) / rows. Labels in [0, cols) (checked by
// the caller).
template <typename T>
double nll(T* dlogp,               // dlogp is (rows, cols)
           const T* logp,          // logp is (rows, cols)
           const int64_t* label,   // label is (rows,)
           int64_t rows, int64_t cols);

// loss = -mean [t log p + (1 - t) log(1 - p)]; dp = (p - t) / (n p (1 - p)).
template <typename T>
double probability_binary_cross_entropy(T* dp, const T* p, const T* t, int64_t n);  // all (n,)

}  // namespace lamina
