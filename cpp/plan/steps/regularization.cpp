// The dropout step: in training, a mask drawn from (key, counter) over the step's whole
// (batch, *shape) output, recomputed in backward; in inference, the identity (a view: no copy).
#include <stdexcept>
#include <string>

#include "kernels/regularization.h"
#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class DropoutStep final : public Step<T> {
  public:
    DropoutStep(const Shape& in, double p) : Step<T>(in, in), p_(p), size_(in.size()) {}

    const char* kind() const override { return "dropout"; }
    int64_t random_per_sample() const override { return size_; }
    bool is_view(Mode mode) const override { return mode == Mode::infer; }
    bool needs_input() const override { return false; }
    bool needs_output() const override { return false; }
    bool backward_in_place() const override { return true; }

    void forward(T* y, const T* x, int64_t batch, T*, const Random& random, Mode) override {
        dropout_forward<T>(y, x, batch * size_, p_, random.key, random.counter);
    }

    void backward(T* dx, T* dy, const T*, const T*, int64_t batch, T*,
                  const Random& random) override {
        if (dx) dropout_backward<T>(dx, dy, batch * size_, p_, random.key, random.counter);
    }

  private:
    double p_;
    int64_t size_;  // elements per sample
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_dropout_step(const Shape& in, double p) {
    if (!(p >= 0.0 && p < 1.0))
        throw std::invalid_argument("p must be in [0, 1), got " + std::to_string(p));
    return std::make_unique<DropoutStep<T>>(in, p);
}

template std::unique_ptr<Step<float>> make_dropout_step<float>(const Shape&, double);
template std::unique_ptr<Step<double>> make_dropout_step<double>(const Shape&, double);

}  // namespace lamina
