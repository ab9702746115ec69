// The dense step: y = normalize(act(x W^T + b)) on the last axis, with the activation fused into
// the GEMM's write-back whenever backward does not need the value before it, and the same kernel
// calls, in the same order, as the layer-by-layer path (linear, then the activation, then
// softmax), so both give bitwise the same numbers. In inference it may also apply the batch norm
// after it (Step::absorb), bitwise the two steps.
#include <stdexcept>
#include <string>

#include "kernels/activations.h"
#include "kernels/dense.h"
#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class DenseStep final : public Step<T> {
  public:
    DenseStep(const Shape& in, const Shape& out, const T* W, const T* b, T* dW, T* db,
              Activation act, double negative_slope, Normalization normalize)
        : Step<T>(in, out),
          W_(W),
          b_(b),
          dW_(dW),
          db_(db),
          act_(act),
          slope_(negative_slope),
          normalize_(normalize),
          in_features_(in.back()),
          out_features_(out.back()),
          rows_per_sample_(in.size(0, in.rank - 1)) {}

    const char* kind() const override { return "dense"; }

    // Inference with a folded batch norm holds its scale and shift.
    int64_t workspace(int64_t batch, Mode mode) const override {
        if (mode == Mode::infer) return folded_ ? 2 * out_features_ : 0;
        return keeps_activation_input_ ? rows(batch) * out_features_ : 0;
    }
    bool needs_input() const override { return dW_ != nullptr; }
    bool needs_output() const override {
        return normalize_ != Normalization::none ||
               (act_ != Activation::none && !backward_from_input(act_));
    }
    bool writes_gradients() const override { return dW_ || db_; }

    // A batch norm over the output features (the last axis), right after a dense step without an
    // activation or normalisation.
    bool absorb(ChannelAffine<T>& next) override {
        if (act_ != Activation::none || normalize_ != Normalization::none ||
            next.channel_axis() != this->out_.rank - 1)
            return false;
        folded_ = &next;
        return true;
    }

    void forward(T* y, const T* x, int64_t batch, T* work, const Random&, Mode mode) override {
        const int64_t m = rows(batch);
        if (mode == Mode::infer && folded_) {
            // The batch norm's affine from its running statistics as they are now.
            T *scale = work, *shift = work + out_features_;
            folded_->affine(scale, shift);
            dense_forward<T>(y, x, W_, b_, m, in_features_, out_features_,
                             folded_->affine_activation(), 0.0, scale, shift);
            return;
        }
        if (mode == Mode::train && keeps_activation_input_) {
            if (backward_from_input(act_)) {
                // The product without its activation goes to work, kept for backward; the
                // activation of it is bitwise what the fused write-back gives (the same loop,
                // core/activation.h).
                dense_forward<T>(work, x, W_, b_, m, in_features_, out_features_, Activation::none,
                                 0.0);
                activation_forward<T>(y, work, m * out_features_, act_, slope_);
                if (normalize_ != Normalization::none)
                    normalization_forward<T>(y, y, m, out_features_, normalize_);
            } else {  // the activation's output, kept under the normalisation
                dense_forward<T>(work, x, W_, b_, m, in_features_, out_features_, act_, slope_);
                normalization_forward<T>(y, work, m, out_features_, normalize_);
            }
            return;
        }
        dense_forward<T>(y, x, W_, b_, m, in_features_, out_features_, act_, slope_);
        if (normalize_ != Normalization::none)
            normalization_forward<T>(y, y, m, out_features_, normalize_);
    }

    void backward(T* dx, T* dy, const T* x, const T* y, int64_t batch, T* work,
                  const Random&) override {
        const int64_t m = rows(batch), n = m * out_features_;
        if (normalize_ != Normalization::none)
            normalization_backward<T>(dy, dy, y, m, out_features_, normalize_);
        if (act_ != Activation::none) {
            // From the pre-activation or the activation's output, whichever forward kept.
            const T* saved = keeps_activation_input_ ? work : y;
            activation_backward<T>(dy, dy, saved, n, act_, slope_);
        }
        dense_backward<T>(dx, dW_, db_, dy, x, W_, m, in_features_, out_features_,
                          /*accumulate=*/false);
    }

  private:
    int64_t rows(int64_t batch) const { return batch * rows_per_sample_; }

    const T* W_;   // W is (out, in)
    const T* b_;   // b is (out,), or null
    T* dW_;        // dW is (out, in), or null (frozen)
    T* db_;        // db is (out,), or null (no bias, or frozen)
    Activation act_;
    double slope_;
    Normalization normalize_;
    int64_t in_features_, out_features_;
    int64_t rows_per_sample_;  // product of the per-sample dims before the last
    const ChannelAffine<T>* folded_ = nullptr;  // the batch norm after it, in inference
    // Training keeps the value the activation's backward starts from in the workspace, when it
    // is not the output: the pre-activation (GELU, leaky ReLU), or the activation's output under
    // a normalisation.
    bool keeps_activation_input_ = act_ != Activation::none &&
                                   (backward_from_input(act_) || normalize_ != Normalization::none);
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_dense_step(const Shape& in, const T* W, const T* b, T* dW, T* db,
                                         int64_t out_features, int64_t in_features, Activation act,
                                         double negative_slope, Normalization normalize) {
    if (out_features < 1 || in_features < 1)
        throw std::invalid_argument(
            "weight has shape (" + std::to_string(out_features) + ", " +
            std::to_string(in_features) +
            "); a dense step needs at least one input and one output feature");
    if (in.rank < 1 || in.back() != in_features)
        throw std::invalid_argument("takes inputs of shape (*, " + std::to_string(in_features) +
                                    ") per sample (weight is (" + std::to_string(out_features) +
                                    ", " + std::to_string(in_features) + ")) but gets " + in.str());
    Shape out = in;
    out[out.rank - 1] = out_features;
    return std::make_unique<DenseStep<T>>(in, out, W, b, dW, db, act, negative_slope, normalize);
}

template std::unique_ptr<Step<float>> make_dense_step<float>(const Shape&, const float*,
                                                             const float*, float*, float*, int64_t,
                                                             int64_t, Activation, double,
                                                             Normalization);
template std::unique_ptr<Step<double>> make_dense_step<double>(const Shape&, const double*,
                                                              const double*, double*, double*,
                                                              int64_t, int64_t, Activation, double,
                                                              Normalization);

}  // namespace lamina
