// The normalization steps: batch norm (per channel, with the statistics its BatchStats mode picks;
// running statistics updated by training forwards; ReLU fused) and layer norm (per sample, over its
// trailing dims). Training forward keeps mean and invstd in the workspace for backward. The kernel
// calls are those of lamina.ops.normalization, in the same order, so the plan and the
// layer-by-layer path agree bitwise. In inference a batch norm with running statistics is a
// per-channel affine (ChannelAffine), which the plan may fold into the convolution or dense step
// before it.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/normalization.h"
#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class BatchNormStep final : public Step<T>, public ChannelAffine<T> {
  public:
    BatchNormStep(const Shape& in, int64_t axis, const T* gamma, const T* beta, T* dgamma,
                  T* dbeta, T* running_mean, T* running_var, int64_t* num_batches_tracked,
                  double eps, double momentum, bool unbiased, BatchStats stats, Activation act)
        : Step<T>(in, in), axis_(axis), outer_(in.size(0, int(axis))), channels_(in[int(axis)]),
          inner_(in.size(int(axis) + 1)), gamma_(gamma), beta_(beta), dgamma_(dgamma),
          dbeta_(dbeta), running_mean_(running_mean), running_var_(running_var),
          count_(num_batches_tracked), eps_(eps), momentum_(momentum), unbiased_(unbiased),
          stats_(stats), act_(act) {}

    const char* kind() const override { return "batch_norm"; }

    // mean and invstd (kept from the training forward for backward), var, scale and shift;
    // nothing in inference once folded (a view then).
    int64_t workspace(int64_t, Mode) const override { return 5 * channels_; }
    bool is_view(Mode mode) const override { return mode == Mode::infer && folded_; }
    bool needs_input() const override { return true; }
    bool needs_output() const override { return act_ == Activation::relu; }
    bool backward_in_place() const override { return true; }
    bool writes_gradients() const override { return dgamma_ || dbeta_; }
    // Batch statistics of one value per channel are undefined (PyTorch: "Expected more than 1
    // value per channel when training").
    int64_t min_batch(Mode mode) const override {
        return batch_statistics(mode) && outer_ * inner_ == 1 ? 2 : 1;
    }

    ChannelAffine<T>* inference_affine() override {
        return batch_statistics(Mode::infer) ? nullptr : this;
    }
    int64_t channel_axis() const override { return axis_; }
    Activation affine_activation() const override { return act_; }
    void affine(T* scale, T* shift) const override {
        batch_norm_affine<T>(scale, shift, nullptr, running_mean_, running_var_, gamma_, beta_,
                             channels_, eps_);
    }
    void fold() override { folded_ = true; }

    void forward(T* y, const T* x, int64_t batch, T* work, const Random&, Mode mode) override {
        const ChannelView v = view(batch);
        T *mean = work, *invstd = work + channels_, *var = work + 2 * channels_;
        T *scale = work + 3 * channels_, *shift = work + 4 * channels_;
        if (batch_statistics(mode)) {
            // Statistics, running update (training with stats batch), affine and apply in one
            // call, bitwise those four kernels in turn (as the op runs them).
            const bool update = mode == Mode::train && stats_ == BatchStats::batch;
            const double momentum = update ? count_and_momentum() : 0.0;
            batch_norm_forward_training<T>(y, mean, var, invstd, update ? running_mean_ : nullptr,
                                           update ? running_var_ : nullptr, x, gamma_, beta_, v,
                                           eps_, momentum, unbiased_, act_, 0.0);
            return;
        }
        for (int64_t c = 0; c < channels_; ++c) mean[c] = running_mean_[c];
        batch_norm_affine<T>(scale, shift, invstd, running_mean_, running_var_, gamma_, beta_,
                             channels_, eps_);
        batch_norm_apply<T>(y, x, scale, shift, v, act_, 0.0);
    }

    void backward(T* dx, T* dy, const T* x, const T* y, int64_t batch, T* work,
                  const Random&) override {
        const T *mean = work, *invstd = work + channels_;
        batch_norm_backward<T>(dx, dgamma_, dbeta_, dy, x, act_ == Activation::relu ? y : nullptr,
                               mean, invstd, gamma_, view(batch), batch_statistics(Mode::train));
    }

  private:
    bool batch_statistics(Mode mode) const {
        return stats_ == BatchStats::batch_always ||
               (stats_ == BatchStats::batch && mode == Mode::train);
    }
    ChannelView view(int64_t batch) const { return {batch * outer_, channels_, inner_}; }

    // The running statistics' factor for this training batch, PyTorch's way: the count first,
    // then the momentum, or 1 / count for a cumulative average.
    double count_and_momentum() {
        if (count_) ++*count_;
        return momentum_ >= 0.0 ? momentum_ : 1.0 / double(*count_);
    }

    int64_t axis_;                     // the channel axis of a sample, from 0
    int64_t outer_, channels_, inner_;  // a sample as (outer, C, inner)
    const T* gamma_;                   // gamma, beta (C,), or null
    const T* beta_;
    T* dgamma_;                        // dgamma, dbeta (C,), or null (frozen)
    T* dbeta_;
    T* running_mean_;                  // (C,) each, null with batch_always
    T* running_var_;
    int64_t* count_;                   // num_batches_tracked, or null
    double eps_, momentum_;            // momentum < 0: cumulative
    bool unbiased_;
    BatchStats stats_;
    Activation act_;
    bool folded_ = false;              // the step before applies this one in inference
};

template <typename T>
class LayerNormStep final : public Step<T> {
  public:
    LayerNormStep(const Shape& in, int64_t normalized_dims, const T* gamma, const T* beta,
                  T* dgamma, T* dbeta, double eps)
        : Step<T>(in, in), rows_(in.size(0, in.rank - int(normalized_dims))),
          cols_(in.size(in.rank - int(normalized_dims))), gamma_(gamma), beta_(beta),
          dgamma_(dgamma), dbeta_(dbeta), eps_(eps) {}

    const char* kind() const override { return "layer_norm"; }
    // Training keeps each row's mean and invstd for backward; inference needs neither.
    int64_t workspace(int64_t batch, Mode mode) const override {
        return mode == Mode::train ? 2 * batch * rows_ : 0;
    }
    bool needs_input() const override { return true; }
    bool needs_output() const override { return false; }
    bool backward_in_place() const override { return true; }
    bool writes_gradients() const override { return dgamma_ || dbeta_; }

    void forward(T* y, const T* x, int64_t batch, T* work, const Random&, Mode mode) override {
        const int64_t rows = batch * rows_;
        T* mean = mode == Mode::train ? work : nullptr;
        T* invstd = mode == Mode::train ? work + rows : nullptr;
        layer_norm_forward<T>(y, mean, invstd, x, gamma_, beta_, rows, cols_, eps_);
    }

    void backward(T* dx, T* dy, const T* x, const T*, int64_t batch, T* work,
                  const Random&) override {
        const int64_t rows = batch * rows_;
        layer_norm_backward<T>(dx, dgamma_, dbeta_, dy, x, work, work + rows, gamma_, rows, cols_);
    }

  private:
    int64_t rows_, cols_;  // a sample as (rows, cols): cols the normalized dims' values
    const T* gamma_;       // gamma, beta (cols,), or null
    const T* beta_;
    T* dgamma_;            // dgamma, dbeta (cols,), or null (frozen)
    T* dbeta_;
    double eps_;
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_batch_norm_step(const Shape& in, const T* gamma, const T* beta,
                                              T* dgamma, T* dbeta, T* running_mean,
                                              T* running_var, int64_t* num_batches_tracked,
                                              int64_t axis, double eps, double momentum,
                                              bool unbiased, BatchStats stats, Activation act) {
    if (in.rank < 1)
        throw std::invalid_argument("needs a channel axis, but the input per sample is " +
                                    in.str());
    if (axis < -in.rank || axis >= in.rank)
        throw std::invalid_argument("axis " + std::to_string(axis) +
                                    " is out of range for an input of " + in.str() +
                                    " per sample");
    if (axis < 0) axis += in.rank;
    if (!(eps > 0.0) || !std::isfinite(eps))
        throw std::invalid_argument("eps must be > 0 and finite, got " + std::to_string(eps));
    if (std::isnan(momentum) || momentum < 0.0) momentum = -1.0;  // None: cumulative
    if (momentum > 1.0)
        throw std::invalid_argument("momentum must be in [0, 1] or None, got " +
                                    std::to_string(momentum));
    if (act != Activation::none && act != Activation::relu)
        throw std::invalid_argument("activation must be None or 'relu'");
    const bool running = running_mean || running_var;
    if (running_mean == nullptr || running_var == nullptr) {
        if (running)
            throw std::invalid_argument("needs both running_mean and running_var, or neither");
        if (stats != BatchStats::batch_always)
            throw std::invalid_argument("needs running_mean and running_var unless its stats are "
                                        "'batch_always'");
    } else if (stats == BatchStats::batch_always) {
        throw std::invalid_argument("takes no running_mean or running_var with stats "
                                    "'batch_always'");
    }
    if (stats == BatchStats::batch && momentum < 0.0 && !num_batches_tracked)
        throw std::invalid_argument("with momentum None (a cumulative average) needs "
                                    "num_batches_tracked");
    return std::make_unique<BatchNormStep<T>>(in, axis, gamma, beta, dgamma, dbeta, running_mean,
                                              running_var, num_batches_tracked, eps, momentum,
                                              unbiased, stats, act);
}

template <typename T>
std::unique_ptr<Step<T>> make_layer_norm_step(const Shape& in, const T* gamma, const T* beta,
                                              T* dgamma, T* dbeta, int64_t normalized_dims,
                                              double eps) {
    if (normalized_dims < 1 || normalized_dims > in.rank)
        throw std::invalid_argument("normalized_dims must be in [1, " + std::to_string(in.rank) +
                                    "] for an input of " + in.str() + " per sample, got " +
                                    std::to_string(normalized_dims));
    if (!(eps > 0.0) || !std::isfinite(eps))
        throw std::invalid_argument("eps must be > 0 and finite, got " + std::to_string(eps));
    return std::make_unique<LayerNormStep<T>>(in, normalized_dims, gamma, beta, dgamma, dbeta,
                                              eps);
}

template std::unique_ptr<Step<float>> make_batch_norm_step<float>(
    const Shape&, const float*, const float*, float*, float*, float*, float*, int64_t*, int64_t,
    double, double, bool, BatchStats, Activation);
template std::unique_ptr<Step<double>> make_batch_norm_step<double>(
    const Shape&, const double*, const double*, double*, double*, double*, double*, int64_t*,
    int64_t, double, double, bool, BatchStats, Activation);
template std::unique_ptr<Step<float>> make_layer_norm_step<float>(const Shape&, const float*,
                                                                  const float*, float*, float*,
                                                                  int64_t, double);
template std::unique_ptr<Step<double>> make_layer_norm_step<double>(const Shape&, const double*,
                                                                    const double*, double*,
                                                                    double*, int64_t, double);

}  // namespace lamina
