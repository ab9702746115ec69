// The execution plan's step: the same kernels the Python layers call, in the same order.
#include "plan/plan.h"

#include <algorithm>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/dense.h"
#include "kernels/losses.h"
#include "kernels/optim.h"

namespace lamina {

template <typename T>
void Plan<T>::reserve(int64_t batch) {
    if (batch == batch_) return;
    int64_t total = 0, widest = 0;
    offsets_.clear();
    for (const auto& l : layers_) {
        offsets_.push_back(total);
        total += batch * l.out;
        widest = std::max({widest, l.in, l.out});
    }
    activations_.assign(total, T(0));
    grad_[0].assign(batch * widest, T(0));
    grad_[1].assign(batch * widest, T(0));
    batch_ = batch;
}

// Runs the layers; with keep_activations every layer's output stays in activations_ for
// backward, otherwise two slots are reused. Returns the last layer's output.
template <typename T>
const T* Plan<T>::forward(const T* x, int64_t batch, bool keep_activations) {
    const T* in = x;
    T* slot = activations_.data();
    for (size_t i = 0; i < layers_.size(); ++i) {
        const PlanLayer<T>& l = layers_[i];
        T* out = keep_activations ? slot : grad_[i % 2].data();
        dense_forward<T>(out, in, l.W, l.b, batch, l.in, l.out, l.act, 0.01);
        if (l.softmax) softmax_forward<T>(out, out, batch, l.out);
        in = out;
        slot += batch * l.out;
    }
    return in;
}

template <typename T>
double Plan<T>::loss_and_gradient(T* grad, const T* y, const int64_t* labels, const T* target,
                                  int64_t batch) {
    const int64_t classes = layers_.back().out, n = batch * classes;
    switch (loss_) {
        case LossKind::cross_entropy:
            return labels ? cross_entropy_labels<T>(grad, y, labels, batch, classes)
                          : cross_entropy_probs<T>(grad, y, target, batch, classes);
        case LossKind::binary_cross_entropy: return binary_cross_entropy<T>(grad, y, target, n);
        case LossKind::mse: return mse<T>(grad, y, target, n);
        case LossKind::probability_cross_entropy:
            return labels ? probability_cross_entropy_labels<T>(grad, y, labels, batch, classes)
                          : probability_cross_entropy_probs<T>(grad, y, target, batch, classes);
        case LossKind::probability_binary_cross_entropy:
            return probability_binary_cross_entropy<T>(grad, y, target, n);
        case LossKind::nll: break;  // rejected by the binding
    }
    return 0.0;
}

// grad holds dL/d(output of the last layer); walks the layers back, writing parameter gradients
// (the values zero_grad + accumulate would give) and skipping dx of the first layer.
template <typename T>
void Plan<T>::backward(T* grad, const T* x, int64_t batch) {
    // Layer i's output starts at offsets_[i] in activations_; its input is layer i-1's output.
    T* dy = grad;
    for (size_t i = layers_.size(); i-- > 0;) {
        const PlanLayer<T>& l = layers_[i];
        const T* y = activations_.data() + offsets_[i];
        const T* input = i > 0 ? activations_.data() + offsets_[i - 1] : x;
        const int64_t n = batch * l.out;
        if (l.softmax) softmax_backward<T>(dy, dy, y, batch, l.out);
        activation_backward<T>(dy, dy, y, n, l.act, 0.01);
        T* dx = i > 0 ? (dy == grad_[0].data() ? grad_[1].data() : grad_[0].data()) : nullptr;
        dense_backward<T>(dx, l.dW, l.db, dy, input, l.W, batch, l.in, l.out, /*accumulate=*/false);
        dy = dx;
    }
}

template <typename T>
void Plan<T>::update(const Hyper& h) {
    for (const PlanLayer<T>& l : layers_) {
        const int64_t sizes[2] = {l.out * l.in, l.b ? l.out : 0};
        T* params[2] = {l.W, l.b};
        const T* grads[2] = {l.dW, l.db};
        for (int k = 0; k < 2; ++k) {
            if (!params[k]) continue;
            if (optimizer_ == OptimizerKind::sgd)
                sgd_step<T>(params[k], l.state[k], grads[k], sizes[k], h.lr, h.momentum,
                            h.weight_decay, h.nesterov);
            else
                adam_step<T>(params[k], l.state[k], l.state[2 + k], grads[k], sizes[k], h.step,
                             h.lr, h.beta1, h.beta2, h.eps, h.weight_decay);
        }
    }
}

template <typename T>
double Plan<T>::train_step(T* y_out, const T* x, const int64_t* labels, const T* target,
                           int64_t batch, const Hyper& hyper) {
    std::lock_guard<std::mutex> lock(mutex_);
    reserve(batch);
    const T* y = forward(x, batch, true);
    if (y_out) std::memcpy(y_out, y, sizeof(T) * batch * out_features());
    T* grad = grad_[0].data();
    const double loss = loss_and_gradient(grad, y, labels, target, batch);
    backward(grad, x, batch);
    update(hyper);
    return loss;
}

template <typename T>
void Plan<T>::predict(T* y, const T* x, int64_t batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    reserve(batch);
    const T* out = forward(x, batch, false);
    std::memcpy(y, out, sizeof(T) * batch * out_features());
}

template class Plan<float>;
template class Plan<double>;

}  // namespace lamina
