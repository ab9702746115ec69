// Batch normalization and layer normalization, forward and backward.
//
// Batch norm normalises each channel over every other axis. Any layout is a view
// (outer, C, inner) of a row-major array: (N, C) is (N, C, 1), (N, C, L) and (N, C, H, W)
// are (N, C, L) and (N, C, H*W), and channels_last (N, H, W, C) is (N*H*W, C, 1). Each channel
// reduces m = outer * inner values:
//   mean_c = sum x / m,  var_c = sum (x - mean_c)^2 / m (biased),  invstd_c = 1 / sqrt(var_c + eps)
//   scale_c = gamma_c * invstd_c,  shift_c = beta_c - mean_c * scale_c
//   y = act(fma(x, scale_c, shift_c))      (training: batch statistics; inference: running ones)
// The inference form is the same fma with scale and shift from the running statistics, so a
// GEMM epilogue that applies it after a convolution's bias gives the same bits as the two steps.
//
// Layer norm normalises each row of a (rows, cols) view over its cols values, with a weight and
// bias of cols values:  y = (x - mean_r) * invstd_r * gamma + beta.
//
// Sums run in double, in a fixed order that does not depend on the thread count: threads split
// channels (batch norm) or rows (layer norm) and never a reduction, so every result is bitwise
// the same for 1, 2 or N threads.
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

// A batch-norm operand (outer, C, inner), row-major: x[(o * C + c) * inner + i].
struct ChannelView {
    int64_t outer, channels, inner;
    int64_t per_channel() const { return outer * inner; }  // m, the values one channel reduces
};

// mean (C,) and biased var (C,) of each channel, in one pass over x (sums in double, shifted by
// the channel's first value so that a large mean does not cancel the variance away).
template <typename T>
void batch_norm_statistics(T* mean, T* var, const T* x, const ChannelView& v);

// running = running * (1 - momentum) + batch * momentum, for the mean and the variance; the
// batch variance enters as var * m / (m - 1) when unbiased (PyTorch), as var when not (Keras).
// momentum in [0, 1]; a cumulative average passes 1 / (batches so far, this one included).
template <typename T>
void batch_norm_update_running(T* running_mean, T* running_var, const T* mean, const T* var,
                               int64_t channels, int64_t m, double momentum, bool unbiased);

// invstd = 1 / sqrt(var + eps) (in double, rounded once), scale = gamma * invstd,
// shift = beta - mean * scale; gamma null means ones, beta null zeros. Any output but scale and
// shift may be null.
template <typename T>
void batch_norm_affine(T* scale, T* shift, T* invstd, const T* mean, const T* var,
                       const T* gamma, const T* beta, int64_t channels, double eps);

// y = act(fma(x, scale_c, shift_c)); y may be x. act is none or any elementwise activation.
template <typename T>
void batch_norm_apply(T* y, const T* x, const T* scale, const T* shift, const ChannelView& v,
                      Activation act, double negative_slope);

// The training forward in one call, as batch_norm_statistics, _update_running (skipped when
// running_mean is null), _affine and _apply give it, bit for bit: with inner > 1 each channel's
// steps follow each other while its values are still in cache. mean, var, invstd (C,) are written;
// y may be x.
template <typename T>
void batch_norm_forward_training(T* y, T* mean, T* var, T* invstd, T* running_mean,
                                 T* running_var, const T* x, const T* gamma, const T* beta,
                                 const ChannelView& v, double eps, double momentum, bool unbiased,
                                 Activation act, double negative_slope);

// Gradients of y = act(bn(x)) from dy. With relu_output (the forward's y, when it ended in a
// ReLU) dy counts only where y > 0: BN + ReLU backward in one pass. Per channel, with
// g = dy (masked), xhat = (x - mean) * invstd:
//   dbeta = sum g,  dgamma = sum g * xhat                     (over the channel's m values)
//   batch_stats:  dx = gamma * invstd * (g - dbeta / m - xhat * dgamma / m)
//   otherwise (statistics held fixed: inference mode, a frozen Keras layer):  dx = gamma * invstd * g
// gamma null means ones. dx, dgamma, dbeta are overwritten, each skipped when null; dx may be dy.
template <typename T>
void batch_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                         const T* relu_output, const T* mean, const T* invstd, const T* gamma,
                         const ChannelView& v, bool batch_stats);

// y = (x - mean_r) * invstd_r * gamma + beta over each row of (rows, cols); mean and invstd (rows,)
// are written for backward (either may be null). gamma null means ones, beta null zeros.
template <typename T>
void layer_norm_forward(T* y, T* mean, T* invstd, const T* x, const T* gamma, const T* beta,
                        int64_t rows, int64_t cols, double eps);

// With g = dy * gamma, xhat = (x - mean_r) * invstd_r, per row:
//   dx = invstd_r * (g - mean(g) - xhat * mean(g * xhat))
//   dgamma = sum over rows of dy * xhat,  dbeta = sum over rows of dy  (in a fixed order: rows in
//   order within fixed blocks of rows, then the blocks in order; the blocks depend on rows alone)
// dx, dgamma, dbeta are overwritten, each skipped when null; dx may be dy.
template <typename T>
void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                         const T* invstd, const T* gamma, int64_t rows, int64_t cols);

}  // namespace lamina
