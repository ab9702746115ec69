// The conv2d step: y = act(conv2d(x, W) + b) per sample, (C, H, W) or (H, W, C) by layout, or
// (C, L) / (L, C) for a 1-D layer read as H = 1. As the dense step does, the activation is fused
// into the write-back whenever backward does not need the value before it, and the kernel calls
// are those of the layer-by-layer path in the same order (conv2d, then the activation's forward;
// backward: the activation's backward, then conv2d_backward), so both are bitwise equal. In
// inference it may also apply the batch norm after it (Step::absorb), bitwise the two steps.
#include <stdexcept>
#include <string>

#include "kernels/activations.h"
#include "kernels/conv.h"
#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class ConvStep final : public Step<T> {
  public:
    ConvStep(const Shape& in, const Shape& out, const ConvShape& geometry, const T* W, const T* b,
             T* dW, T* db, Activation act, double negative_slope)
        : Step<T>(in, out), g_(geometry), W_(W), b_(b), dW_(dW), db_(db), act_(act),
          slope_(negative_slope) {}

    const char* kind() const override { return "conv2d"; }

    // Training keeps the pre-activation when backward starts from it; inference with a folded
    // batch norm holds its scale and shift.
    int64_t workspace(int64_t batch, Mode mode) const override {
        if (mode == Mode::infer) return folded_ ? 2 * g_.Cout : 0;
        return backward_from_input(act_) ? batch * this->out_.size() : 0;
    }
    bool needs_input() const override { return dW_ != nullptr; }
    bool needs_output() const override {
        return act_ != Activation::none && !backward_from_input(act_);
    }
    bool writes_gradients() const override { return dW_ || db_; }

    // A batch norm over the output channels, right after a convolution without an activation.
    bool absorb(ChannelAffine<T>& next) override {
        const int64_t channel_axis = g_.channels_last ? this->out_.rank - 1 : 0;
        if (act_ != Activation::none || next.channel_axis() != channel_axis) return false;
        folded_ = &next;
        return true;
    }

    void forward(T* y, const T* x, int64_t batch, T* work, const Random&, Mode mode) override {
        const ConvShape s = shape(batch);
        if (mode == Mode::infer && folded_) {
            // The batch norm's affine from its running statistics as they are now.
            T *scale = work, *shift = work + g_.Cout;
            folded_->affine(scale, shift);
            conv2d_forward<T>(y, x, W_, b_, s, folded_->affine_activation(), 0.0, scale, shift);
            return;
        }
        if (mode == Mode::train && backward_from_input(act_)) {
            // The pre-activation goes to work, kept for backward; the activation of it is bitwise
            // what the fused write-back gives (the same loop, core/activation.h).
            conv2d_forward<T>(work, x, W_, b_, s, Activation::none, 0.0);
            activation_forward<T>(y, work, batch * this->out_.size(), act_, slope_);
            return;
        }
        conv2d_forward<T>(y, x, W_, b_, s, act_, slope_);
    }

    void backward(T* dx, T* dy, const T* x, const T* y, int64_t batch, T* work,
                  const Random&) override {
        if (act_ != Activation::none) {
            const T* saved = backward_from_input(act_) ? work : y;
            activation_backward<T>(dy, dy, saved, batch * this->out_.size(), act_, slope_);
        }
        conv2d_backward<T>(dx, dW_, db_, dy, x, W_, shape(batch), /*accumulate=*/false);
    }

  private:
    ConvShape shape(int64_t batch) const {
        ConvShape s = g_;
        s.N = batch;
        return s;
    }

    ConvShape g_;  // the geometry, N set per call
    const T* W_;   // W is (Cout, C/groups, KH, KW) or (KH, KW, C/groups, Cout) by layout
    const T* b_;   // b is (Cout,), or null
    T* dW_;        // dW is W's shape, or null (frozen)
    T* db_;        // db is (Cout,), or null (no bias, or frozen)
    Activation act_;
    double slope_;
    const ChannelAffine<T>* folded_ = nullptr;  // the batch norm after it, in inference
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_conv_step(const Shape& in, const T* W, const T* b, T* dW, T* db,
                                        const Shape& w_shape, const ConvShape& geometry,
                                        Activation act, double negative_slope) {
    ConvShape s = geometry;
    const bool cl = s.channels_last;
    if (in.rank != 2 && in.rank != 3)
        throw std::invalid_argument(
            std::string("takes inputs of shape ") + (cl ? "(H, W, C) or (L, C)" : "(C, H, W) or (C, L)") +
            " per sample but gets " + in.str());
    if (w_shape.rank != in.rank + 1)
        throw std::invalid_argument("weight has shape " + w_shape.str() + " but the input " +
                                    in.str() + " needs a " + std::to_string(in.rank + 1) + "-D one");
    // A 1-D layer is the 2-D case with H = 1 and a kernel of height 1.
    const bool one_d = in.rank == 2;
    s.C = cl ? in.back() : in[0];
    s.H = one_d ? 1 : (cl ? in[0] : in[1]);
    s.W = one_d ? (cl ? in[0] : in[1]) : (cl ? in[1] : in[2]);
    s.Cout = cl ? w_shape.back() : w_shape[0];
    const int64_t wc = cl ? w_shape[w_shape.rank - 2] : w_shape[1];
    s.KH = one_d ? 1 : (cl ? w_shape[0] : w_shape[2]);
    s.KW = cl ? w_shape[one_d ? 0 : 1] : w_shape[w_shape.rank - 1];
    if (s.stride_h < 1 || s.stride_w < 1 || s.dilation_h < 1 || s.dilation_w < 1 || s.groups < 1)
        throw std::invalid_argument("stride, dilation and groups must be >= 1");
    if (s.pad_top < 0 || s.pad_bottom < 0 || s.pad_left < 0 || s.pad_right < 0)
        throw std::invalid_argument("padding must be >= 0");
    if (one_d && (s.pad_top != 0 || s.pad_bottom != 0))  // H = 1 stays 1: the output has no H
        throw std::invalid_argument("a 1-D input " + in.str() +
                                    " takes no pad_top or pad_bottom (got " +
                                    std::to_string(s.pad_top) + ", " +
                                    std::to_string(s.pad_bottom) + ")");
    if (s.KH < 1 || s.KW < 1 || s.Cout < 1)
        throw std::invalid_argument("weight has shape " + w_shape.str() +
                                    "; a conv2d step needs a kernel and an output channel");
    if (s.C % s.groups != 0 || s.Cout % s.groups != 0 || wc != s.C / s.groups)
        throw std::invalid_argument("weight " + w_shape.str() + " does not fit input " + in.str() +
                                    " with groups " + std::to_string(s.groups));
    const int64_t limit = int64_t(1) << 31;  // as the binding of conv2d bounds them
    if (s.pad_top > limit || s.pad_bottom > limit || s.pad_left > limit || s.pad_right > limit ||
        s.dilation_h > limit / s.KH || s.dilation_w > limit / s.KW || s.stride_h > limit ||
        s.stride_w > limit)
        throw std::invalid_argument("a padded side, stride or dilated kernel beyond 2**31 positions");
    if (s.H + s.pad_top + s.pad_bottom < s.dilation_h * (s.KH - 1) + 1 ||
        s.W + s.pad_left + s.pad_right < s.dilation_w * (s.KW - 1) + 1)
        throw std::invalid_argument("kernel larger than the padded input " + in.str());
    Shape out;
    if (one_d) {
        out = cl ? Shape{s.Wo(), s.Cout} : Shape{s.Cout, s.Wo()};
    } else {
        out = cl ? Shape{s.Ho(), s.Wo(), s.Cout} : Shape{s.Cout, s.Ho(), s.Wo()};
    }
    return std::make_unique<ConvStep<T>>(in, out, s, W, b, dW, db, act, negative_slope);
}

template std::unique_ptr<Step<float>> make_conv_step<float>(const Shape&, const float*, const float*,
                                                            float*, float*, const Shape&,
                                                            const ConvShape&, Activation, double);
template std::unique_ptr<Step<double>> make_conv_step<double>(const Shape&, const double*,
                                                              const double*, double*, double*,
                                                              const Shape&, const ConvShape&,
                                                              Activation, double);

}  // namespace lamina
