// The standalone activation step: an elementwise activation on any per-sample shape, or a
// normalisation (softmax, log_softmax) over the last axis. Backward runs in place on dy, from
// the output or, for leaky ReLU and GELU, from the input.
#include <stdexcept>

#include "kernels/activations.h"
#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class ActivationStep final : public Step<T> {
  public:
    ActivationStep(const Shape& in, Activation act, double negative_slope, Normalization normalize)
        : Step<T>(in, in), act_(act), slope_(negative_slope), normalize_(normalize),
          size_(in.size()), cols_(in.back()) {}

    const char* kind() const override { return "activation"; }
    bool needs_input() const override { return backward_from_input(act_); }
    bool needs_output() const override { return !backward_from_input(act_); }
    bool backward_in_place() const override { return true; }

    void forward(T* y, const T* x, int64_t batch, T*, const Random&, Mode) override {
        if (normalize_ != Normalization::none)
            normalization_forward<T>(y, x, batch * size_ / cols_, cols_, normalize_);
        else
            activation_forward<T>(y, x, batch * size_, act_, slope_);
    }

    void backward(T* dx, T* dy, const T* x, const T* y, int64_t batch, T*, const Random&) override {
        if (!dx) return;
        if (normalize_ != Normalization::none)
            normalization_backward<T>(dx, dy, y, batch * size_ / cols_, cols_, normalize_);
        else
            activation_backward<T>(dx, dy, backward_from_input(act_) ? x : y, batch * size_, act_,
                                   slope_);
    }

  private:
    Activation act_;
    double slope_;
    Normalization normalize_;
    int64_t size_;  // elements per sample
    int64_t cols_;  // the last axis: the rows a normalisation runs over
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_activation_step(const Shape& in, Activation act,
                                              double negative_slope, Normalization normalize) {
    if ((act == Activation::none) == (normalize == Normalization::none))
        throw std::invalid_argument(
            "an activation step needs exactly one of attrs 'activation' and 'normalize'");
    if (in.rank < 1)
        throw std::invalid_argument("needs at least one axis per sample, gets " + in.str());
    return std::make_unique<ActivationStep<T>>(in, act, negative_slope, normalize);
}

template std::unique_ptr<Step<float>> make_activation_step<float>(const Shape&, Activation, double,
                                                                  Normalization);
template std::unique_ptr<Step<double>> make_activation_step<double>(const Shape&, Activation,
                                                                    double, Normalization);

}  // namespace lamina
