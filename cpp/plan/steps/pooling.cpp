// The pooling steps: max (its argmax kept in the workspace from forward to backward), average and
// adaptive average, on per-sample inputs (C, H, W) / (H, W, C), or (C, L) / (L, C) read as H = 1
// (1-D layers; the output then keeps rank 2). The same kernel calls as lamina.ops.pooling, so the
// plan and the layer-by-layer path agree bitwise.
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/pooling.h"
#include "plan/step.h"

namespace lamina {

namespace {

// The argmax index stored in the max step's workspace: an integer of T's size, so one slot of T
// holds one index and the workspace (counted in values of T) keeps T's alignment.
template <typename T>
using SlotIndex = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// g's sizes from a per-sample shape; the output shape for out_h x out_w.
void read_sample_shape(Pool2d& g, const Shape& in) {
    if (in.rank != 2 && in.rank != 3)
        throw std::invalid_argument("takes per-sample inputs (C, H, W) or (H, W, C), or (C, L) or "
                                    "(L, C) for 1-D pooling, got " + in.str());
    g.batch = 1;
    if (in.rank == 3) {
        g.channels = g.channels_last ? in[2] : in[0];
        g.in_h = g.channels_last ? in[0] : in[1];
        g.in_w = g.channels_last ? in[1] : in[2];
    } else {
        g.channels = g.channels_last ? in[1] : in[0];
        g.in_h = 1;
        g.in_w = g.channels_last ? in[0] : in[1];
    }
}

Shape sample_output(const Pool2d& g, const Shape& in) {
    if (in.rank == 2) {
        if (g.out_h != 1)
            throw std::invalid_argument("gives " + std::to_string(g.out_h) +
                                        " output rows for a 1-D input " + in.str() +
                                        " (its height is 1): kernel_h, stride_h and the "
                                        "vertical padding must keep one row");
        return g.channels_last ? Shape{g.out_w, g.channels} : Shape{g.channels, g.out_w};
    }
    return g.channels_last ? Shape{g.out_h, g.out_w, g.channels}
                           : Shape{g.channels, g.out_h, g.out_w};
}

template <typename T>
class PoolStep : public Step<T> {
  public:
    PoolStep(const Shape& in, const Shape& out, const Pool2d& g) : Step<T>(in, out), g_(g) {}
    bool needs_input() const override { return false; }
    bool needs_output() const override { return false; }

  protected:
    Pool2d at(int64_t batch) const {
        Pool2d g = g_;
        g.batch = batch;
        return g;
    }
    Pool2d g_;  // per sample: batch 1
};

template <typename T>
class MaxPoolStep final : public PoolStep<T> {
  public:
    using PoolStep<T>::PoolStep;
    const char* kind() const override { return "max_pool2d"; }
    // Training keeps one index per output value, each in a slot of T (SlotIndex<T>).
    int64_t workspace(int64_t batch, Mode mode) const override {
        return mode == Mode::train ? batch * this->out_.size() : 0;
    }
    void forward(T* y, const T* x, int64_t batch, T* work, const Random&, Mode mode) override {
        max_pool2d_forward<T, SlotIndex<T>>(
            y, mode == Mode::train ? reinterpret_cast<SlotIndex<T>*>(work) : nullptr, x,
            this->at(batch));
    }
    void backward(T* dx, T* dy, const T*, const T*, int64_t batch, T* work,
                  const Random&) override {
        if (dx)
            max_pool2d_backward<T, SlotIndex<T>>(dx, dy, reinterpret_cast<SlotIndex<T>*>(work),
                                                 this->at(batch));
    }
};

template <typename T>
class AvgPoolStep final : public PoolStep<T> {
  public:
    AvgPoolStep(const Shape& in, const Shape& out, const Pool2d& g, bool count_include_pad,
                int64_t divisor_override)
        : PoolStep<T>(in, out, g), count_include_pad_(count_include_pad),
          divisor_override_(divisor_override) {}
    const char* kind() const override { return "avg_pool2d"; }
    void forward(T* y, const T* x, int64_t batch, T*, const Random&, Mode) override {
        avg_pool2d_forward<T>(y, x, this->at(batch), count_include_pad_, divisor_override_);
    }
    void backward(T* dx, T* dy, const T*, const T*, int64_t batch, T*, const Random&) override {
        if (dx)
            avg_pool2d_backward<T>(dx, dy, this->at(batch), count_include_pad_,
                                   divisor_override_);
    }

  private:
    bool count_include_pad_;
    int64_t divisor_override_;  // 0: none
};

template <typename T>
class AdaptiveAvgPoolStep final : public PoolStep<T> {
  public:
    using PoolStep<T>::PoolStep;
    const char* kind() const override { return "adaptive_avg_pool2d"; }
    void forward(T* y, const T* x, int64_t batch, T*, const Random&, Mode) override {
        adaptive_avg_pool2d_forward<T>(y, x, this->at(batch));
    }
    void backward(T* dx, T* dy, const T*, const T*, int64_t batch, T*, const Random&) override {
        if (dx) adaptive_avg_pool2d_backward<T>(dx, dy, this->at(batch));
    }
};

void plan_window(Pool2d& g, const Shape& in, bool ceil_mode) {
    read_sample_shape(g, in);
    const std::string error = pool2d_plan(g, ceil_mode);
    if (!error.empty()) throw std::invalid_argument(error);
}

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_max_pool2d_step(const Shape& in, Pool2d window, bool ceil_mode) {
    plan_window(window, in, ceil_mode);
    if (sizeof(SlotIndex<T>) == 4 && window.in_h * window.in_w >= (int64_t(1) << 31))
        throw std::invalid_argument("input plane " + in.str() + " has 2**31 cells or more, past "
                                    "the float32 plan's argmax index");
    const Shape out = sample_output(window, in);
    return std::make_unique<MaxPoolStep<T>>(in, out, window);
}

template <typename T>
std::unique_ptr<Step<T>> make_avg_pool2d_step(const Shape& in, Pool2d window, bool ceil_mode,
                                              bool count_include_pad, int64_t divisor_override) {
    if (divisor_override < 0 || divisor_override >= kPoolMax)
        throw std::invalid_argument("divisor_override must be None or in [1, 2**31), got " +
                                    std::to_string(divisor_override));
    window.dilation_h = window.dilation_w = 1;
    plan_window(window, in, ceil_mode);
    const Shape out = sample_output(window, in);
    return std::make_unique<AvgPoolStep<T>>(in, out, window, count_include_pad, divisor_override);
}

template <typename T>
std::unique_ptr<Step<T>> make_adaptive_avg_pool2d_step(const Shape& in, int64_t out_h,
                                                       int64_t out_w, bool channels_last) {
    Pool2d g;
    g.channels_last = channels_last;
    read_sample_shape(g, in);
    if (out_h < 1 || out_h >= kPoolMax || out_w < 1 || out_w >= kPoolMax)
        throw std::invalid_argument("output size must be in [1, 2**31), got (" +
                                    std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
    g.out_h = out_h, g.out_w = out_w;
    const Shape out = sample_output(g, in);
    return std::make_unique<AdaptiveAvgPoolStep<T>>(in, out, g);
}

template std::unique_ptr<Step<float>> make_max_pool2d_step<float>(const Shape&, Pool2d, bool);
template std::unique_ptr<Step<double>> make_max_pool2d_step<double>(const Shape&, Pool2d, bool);
template std::unique_ptr<Step<float>> make_avg_pool2d_step<float>(const Shape&, Pool2d, bool, bool,
                                                                  int64_t);
template std::unique_ptr<Step<double>> make_avg_pool2d_step<double>(const Shape&, Pool2d, bool,
                                                                    bool, int64_t);
template std::unique_ptr<Step<float>> make_adaptive_avg_pool2d_step<float>(const Shape&, int64_t,
                                                                           int64_t, bool);
template std::unique_ptr<Step<double>> make_adaptive_avg_pool2d_step<double>(const Shape&, int64_t,
                                                                             int64_t, bool);

}  // namespace lamina
