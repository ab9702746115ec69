// A step of the plan: one layer's forward and backward over a whole batch, on raw pointers, and
// what the plan must know to run it (per-sample shapes, workspace, what backward reads, random
// numbers). One implementation per family in steps/<family>.cpp, each built by its make_ function
// below, which throws std::invalid_argument when the shapes do not fit (the binding names the
// step). Arrays are (batch, *shape) row-major, the per-sample shape held by a Shape.
#pragma once
#include <cstdint>
#include <memory>

#include "core/activation.h"
#include "core/shape.h"
#include "kernels/conv.h"
#include "kernels/pooling.h"

namespace lamina {

enum class Mode { train, infer };  // dropout draws a mask only in training

// Where a step's random numbers come from: element i of its (batch, *shape) output draws from
// counter + i (wrapping), under key.
struct Random {
    uint64_t key;
    uint64_t counter;
};

// A step that in inference is y = act(fma(x, scale_c, shift_c)) for each channel c of one axis
// (batch norm with running statistics): the convolution or dense step before it can apply that in
// its GEMM's write-back instead (Plan links them once, at construction), bitwise the same.
template <typename T>
class ChannelAffine {
  public:
    virtual ~ChannelAffine() = default;
    virtual int64_t channel_axis() const = 0;  // of the per-sample shape, from 0
    virtual Activation affine_activation() const = 0;
    // scale, shift (C,) each, from the statistics as they are at the call.
    virtual void affine(T* scale, T* shift) const = 0;
    // The step before applies it from now on: this step's inference forward becomes a view.
    virtual void fold() = 0;
};

template <typename T>
class Step {
  public:
    Step(const Shape& in, const Shape& out) : in_(in), out_(out) {}
    virtual ~Step() = default;

    virtual const char* kind() const = 0;
    const Shape& input_shape() const { return in_; }    // per sample
    const Shape& output_shape() const { return out_; }  // per sample

    // Values of T the step needs for `batch` samples; in training the plan keeps each step's
    // workspace from its forward to its backward (a dense step keeps its pre-activation there).
    virtual int64_t workspace(int64_t batch, Mode mode) const { return (void)batch, (void)mode, 0; }
    // Random numbers one sample consumes in training (dropout: its element count).
    virtual int64_t random_per_sample() const { return 0; }
    // The output is the input itself, no copy and no work: flatten, dropout in inference.
    virtual bool is_view(Mode mode) const { return (void)mode, false; }

    // What backward reads, so the plan keeps it from the forward pass: the step's input, its
    // output.
    virtual bool needs_input() const = 0;
    virtual bool needs_output() const = 0;
    // Backward may write dx over dy (elementwise steps).
    virtual bool backward_in_place() const { return false; }
    // Backward writes parameter gradients (overwriting them: what zero_grad, then accumulate,
    // gives). A step without any (no parameters, or all frozen) needs no backward unless a step
    // before it does.
    virtual bool writes_gradients() const { return false; }
    // The smallest batch the step can run in `mode` (batch statistics need two values per
    // channel); the binding checks it before anything runs.
    virtual int64_t min_batch(Mode mode) const { return (void)mode, 1; }

    // Inference fusion: the step as a per-channel affine, when it is one in inference (else
    // null); and whether this step takes over the affine of the step after it, `next`, in its
    // own write-back (then it applies it in every inference forward, and next is a view).
    virtual ChannelAffine<T>* inference_affine() { return nullptr; }
    virtual bool absorb(ChannelAffine<T>& next) { return (void)next, false; }

    // y (batch, *out) = the step applied to x (batch, *in). `work` holds workspace(batch, mode).
    virtual void forward(T* y, const T* x, int64_t batch, T* work, const Random& random,
                         Mode mode) = 0;

    // dx (batch, *in) from dy (batch, *out), which backward may overwrite; x and y as the training
    // forward left them (valid when needs_input / needs_output say so), work as forward left it.
    // dx is null when no step before needs it: only parameter gradients are written then.
    virtual void backward(T* dx, T* dy, const T* x, const T* y, int64_t batch, T* work,
                          const Random& random) = 0;

  protected:
    Shape in_, out_;
};

// ---- the families' steps (steps/<family>.cpp) ---------------------------------------------------

// y = normalize(act(x W^T + b)) over the last axis: (*, in) -> (*, out). W is (out, in), b (out,)
// or null; dW and db (same shapes) null when that parameter is frozen.
template <typename T>
std::unique_ptr<Step<T>> make_dense_step(const Shape& in, const T* W, const T* b, T* dW, T* db,
                                         int64_t out_features, int64_t in_features, Activation act,
                                         double negative_slope, Normalization normalize);

// y = act(conv2d(x, W) + b) per sample: in is (C, H, W) or (H, W, C) by geometry.channels_last,
// or (C, L) / (L, C) for a 1-D layer (H = 1; the output keeps rank 2). W is w_shape: (Cout, C/g,
// KH, KW) or (KH, KW, C/g, Cout), or rank 3 for 1-D ((Cout, C/g, K) or (K, C/g, Cout)); b (Cout,)
// or null; dW, db null when frozen. geometry gives stride, padding, dilation, groups and layout
// (its sizes are taken from in and w_shape). Throws std::invalid_argument when they do not fit.
template <typename T>
std::unique_ptr<Step<T>> make_conv_step(const Shape& in, const T* W, const T* b, T* dW, T* db,
                                        const Shape& w_shape, const ConvShape& geometry,
                                        Activation act, double negative_slope);

// An elementwise activation (any shape) or a normalisation over the last axis: exactly one is set.
template <typename T>
std::unique_ptr<Step<T>> make_activation_step(const Shape& in, Activation act,
                                              double negative_slope, Normalization normalize);

// Dropout with probability p in [0, 1): a mask from (key, counter) in training, identity otherwise.
template <typename T>
std::unique_ptr<Step<T>> make_dropout_step(const Shape& in, double p);

// Flatten dims [start_dim, end_dim] of (batch, *in) into one, PyTorch's way (dims counted with the
// batch as dim 0, negative from the end); the batch itself stays.
template <typename T>
std::unique_ptr<Step<T>> make_flatten_step(const Shape& in, int64_t start_dim, int64_t end_dim);

// 2-D pooling on per-sample inputs (C, H, W) / (H, W, C) by window.channels_last, or (C, L) / (L, C)
// read as H = 1 (the output keeps rank 2 then). window gives the kernel, stride, padding (and
// dilation, for max); its sizes are filled in from `in`. The max step keeps its argmax in its
// training workspace, one index per output value in a slot of T (int32 for float, int64 for
// double).
template <typename T>
std::unique_ptr<Step<T>> make_max_pool2d_step(const Shape& in, Pool2d window, bool ceil_mode);
template <typename T>
std::unique_ptr<Step<T>> make_avg_pool2d_step(const Shape& in, Pool2d window, bool ceil_mode,
                                              bool count_include_pad, int64_t divisor_override);
template <typename T>
std::unique_ptr<Step<T>> make_adaptive_avg_pool2d_step(const Shape& in, int64_t out_h,
                                                       int64_t out_w, bool channels_last);

// Which statistics a batch-norm step normalises with: `batch` (training: the batch's, the running
// ones updated; inference: the running ones), `batch_always` (the batch's in both modes, no running
// statistics: PyTorch's track_running_stats=False) or `running` (the running ones in both modes,
// held fixed in backward: a frozen Keras layer).
enum class BatchStats { batch, batch_always, running };

// y = act(batch_norm(x)) over the channel axis `axis` of the per-sample shape (from 0), any rank:
// (C,), (C, L), (C, H, W), or channels_last (L, C), (H, W, C). gamma, beta (C,) or null (ones,
// zeros); dgamma, dbeta null when frozen. running_mean and running_var (C,): null exactly when
// stats is batch_always; updated by training forwards with stats batch, with
// r = r (1 - momentum) + s momentum (the variance unbiased or not), where momentum < 0 means
// PyTorch's None: the cumulative average, factor 1 / num_batches_tracked (after its increment).
// num_batches_tracked (one int64, or null) counts the training batches that update the running
// statistics; momentum None needs it. act is none or relu (then fused: backward masks dy by y > 0).
template <typename T>
std::unique_ptr<Step<T>> make_batch_norm_step(const Shape& in, const T* gamma, const T* beta,
                                              T* dgamma, T* dbeta, T* running_mean,
                                              T* running_var, int64_t* num_batches_tracked,
                                              int64_t axis, double eps, double momentum,
                                              bool unbiased, BatchStats stats, Activation act);

// y = layer_norm(x) over the last normalized_dims dims of each sample (>= 1, at most its rank);
// gamma, beta of those dims (or null: ones, zeros); dgamma, dbeta null when frozen.
template <typename T>
std::unique_ptr<Step<T>> make_layer_norm_step(const Shape& in, const T* gamma, const T* beta,
                                              T* dgamma, T* dbeta, int64_t normalized_dims,
                                              double eps);

}  // namespace lamina
