// A compiled model: one native call runs a whole training step (forward, loss, backward,
// optimizer update) or a prediction, over a list of steps (step.h) and workspace allocated once
// per batch size. The plan does not own parameters or optimizer state: it points at the NumPy
// arrays that Python holds (parameters() stays the single source of truth), and the steps make the
// same kernel calls in the same order as the layer-by-layer Python path, so both give bitwise
// identical results.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/shape.h"
#include "kernels/losses.h"
#include "plan/step.h"

namespace lamina {

enum class OptimizerKind : int { sgd = 0, adam = 1 };

// One parameter the optimizer updates, after backward has written its gradient.
template <typename T>
struct Update {
    T* param;        // param is (n,), updated in place
    const T* grad;   // grad is (n,): the gradient a step writes
    T* state[2];     // SGD {velocity or null}, Adam {m, v}; each (n,)
    int64_t n;
};

struct Hyper {
    double lr, momentum, weight_decay;
    bool nesterov;
    double beta1, beta2, eps;
    int64_t step;  // Adam's step count for this update (from 1)
};

template <typename T>
class Plan {
  public:
    // steps: at least one, each taking the previous one's output shape. With fuse, a step that
    // can absorb the inference work of the step after it (a batch norm after a convolution or
    // dense step) does, bitwise the same as the two steps.
    Plan(std::vector<std::unique_ptr<Step<T>>> steps, LossKind loss, OptimizerKind optimizer,
         std::vector<Update<T>> updates, bool fuse = true);

    // One training step on a batch x (batch, *input_shape): returns the loss; y_out
    // (batch, *output_shape) receives the output before the update when not null. Exactly one of
    // labels (batch,) and target (batch, *output_shape) is set. Dropout steps draw from
    // (key, counter + the elements earlier dropout steps drew).
    double train_step(T* y_out, const T* x, const int64_t* labels, const T* target, int64_t batch,
                      const Hyper& hyper, uint64_t key, uint64_t counter);

    // y (batch, *output_shape) = the output for x in inference mode (dropout is the identity).
    void predict(T* y, const T* x, int64_t batch);

    const Shape& input_shape() const { return steps_.front()->input_shape(); }
    const Shape& output_shape() const { return steps_.back()->output_shape(); }
    int64_t random_per_sample() const { return random_per_sample_; }
    const Step<T>& step(size_t i) const { return *steps_[i]; }
    // The steps whose inference work the step before them does (fuse), in order.
    const std::vector<size_t>& folded() const { return folded_; }
    // The first step, if any, that cannot run a batch of `batch` in `mode`, else size().
    size_t too_small_for(int64_t batch, Mode mode) const {
        for (size_t i = 0; i < steps_.size(); ++i)
            if (batch < steps_[i]->min_batch(mode)) return i;
        return steps_.size();
    }
    size_t size() const { return steps_.size(); }

  private:
    // Where each step reads and writes in one mode, for one batch size: offsets into `data`
    // (kInput: the caller's input x). Rebuilt only when the batch size changes.
    static constexpr int64_t kInput = -1;
    struct Slot {
        int64_t in, out, work;
        uint64_t counter_offset;  // random numbers earlier steps draw for this batch
        bool view, in_place;      // the step's is_view(mode) and backward_in_place()
    };
    struct Layout {
        int64_t batch = -1;
        std::vector<T> data;  // kept outputs, two transient buffers, workspaces
        std::vector<Slot> slots;
        int64_t final_out = kInput;  // where the last step's output is
        std::vector<T> grad[2];      // ping-pong gradient buffers (training only)
    };

    Layout& prepare(int64_t batch, Mode mode);
    const T* at(const Layout& l, int64_t offset, const T* x) const {
        return offset == kInput ? x : l.data.data() + offset;
    }
    T* at(Layout& l, int64_t offset) { return l.data.data() + offset; }
    static Random random_of(const Slot& s, uint64_t key, uint64_t counter) {
        return {key, counter + s.counter_offset};
    }
    const T* forward(Layout& l, const T* x, int64_t batch, Mode mode, uint64_t key,
                     uint64_t counter);
    double loss_and_gradient(T* grad, const T* y, const int64_t* labels, const T* target,
                             int64_t batch);
    void backward(Layout& l, T* grad, const T* x, int64_t batch, uint64_t key, uint64_t counter);
    void update(const Hyper& hyper);

    std::vector<std::unique_ptr<Step<T>>> steps_;
    LossKind loss_;
    OptimizerKind optimizer_;
    std::vector<Update<T>> updates_;
    std::vector<int64_t> random_before_;  // random numbers per sample drawn by earlier steps
    int64_t random_per_sample_ = 0;
    std::vector<size_t> folded_;
    size_t first_backward_ = 0;  // the first step that writes gradients (size() if none does)
    std::mutex mutex_;           // one call at a time: the workspace is shared
    Layout layouts_[2];          // per Mode
};

}  // namespace lamina
