// A compiled Sequential: one native call runs a whole training step (forward, loss, backward,
// optimizer update) or a prediction, on workspace allocated once per batch size.
// The plan does not own parameters or optimizer state: it points at the NumPy arrays that Python
// holds (parameters() stays the single source of truth), and makes the same kernel calls in the
// same order as the layer-by-layer Python path, so both give bitwise identical results.
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/activation.h"
#include "kernels/losses.h"

namespace lamina {

enum class OptimizerKind : int { sgd = 0, adam = 1 };

template <typename T>
struct PlanLayer {
    T* W;         // W is (out, in)
    T* b;         // b is (out,), or nullptr
    T* dW;        // gradients, same shapes as W and b
    T* db;
    T* state[4];  // optimizer state for W, b: SGD {velocity_W, velocity_b}, Adam {m_W, m_b, v_W, v_b}
    int64_t in, out;
    Activation act;  // fused into the GEMM's write-back
    bool softmax;    // a softmax over the row after the GEMM
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
    Plan(std::vector<PlanLayer<T>> layers, LossKind loss, OptimizerKind optimizer)
        : layers_(std::move(layers)), loss_(loss), optimizer_(optimizer) {}

    // One step on a batch: returns the loss; y_out (batch, out_L) receives the model's output
    // before the update when not null. Exactly one of labels (batch,) and target (batch, out_L) is set.
    double train_step(T* y_out, const T* x, const int64_t* labels, const T* target, int64_t batch,
                      const Hyper& hyper);

    // y (batch, out_L) = the model's output for x (batch, in_0).
    void predict(T* y, const T* x, int64_t batch);

    int64_t in_features() const { return layers_.front().in; }
    int64_t out_features() const { return layers_.back().out; }

  private:
    void reserve(int64_t batch);
    const T* forward(const T* x, int64_t batch, bool keep_activations);
    double loss_and_gradient(T* grad, const T* y, const int64_t* labels, const T* target, int64_t batch);
    void backward(T* grad, const T* x, int64_t batch);
    void update(const Hyper& hyper);

    std::vector<PlanLayer<T>> layers_;
    LossKind loss_;
    OptimizerKind optimizer_;
    std::mutex mutex_;           // one call at a time: the workspace is shared
    int64_t batch_ = -1;         // batch size the workspace is sized for
    std::vector<T> activations_; // output of each layer, (batch, out_l), back to back
    std::vector<int64_t> offsets_;  // where each layer's output starts in activations_
    std::vector<T> grad_[2];     // ping-pong gradient buffers, (batch, max width)
};

}  // namespace lamina
