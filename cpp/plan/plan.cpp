// The plan's walk over its steps: where each step's output lives (kept for backward, or in one of
// two transient buffers, or the input itself for a view), the forward pass, the loss, the
// backward pass from the last step to the first that writes gradients, and the optimizer update.
#include "plan/plan.h"

#include <algorithm>
#include <cstring>

#include "kernels/losses.h"
#include "kernels/optim.h"

namespace lamina {

template <typename T>
Plan<T>::Plan(std::vector<std::unique_ptr<Step<T>>> steps, LossKind loss, OptimizerKind optimizer,
              std::vector<Update<T>> updates, bool fuse)
    : steps_(std::move(steps)), loss_(loss), optimizer_(optimizer), updates_(std::move(updates)) {
    for (size_t i = 0; fuse && i + 1 < steps_.size(); ++i) {
        ChannelAffine<T>* next = steps_[i + 1]->inference_affine();
        if (next && steps_[i]->absorb(*next)) next->fold(), folded_.push_back(i + 1);
    }
    first_backward_ = steps_.size();
    for (size_t i = 0; i < steps_.size(); ++i) {
        random_before_.push_back(random_per_sample_);
        random_per_sample_ += steps_[i]->random_per_sample();
        if (steps_[i]->writes_gradients() && first_backward_ == steps_.size()) first_backward_ = i;
    }
}

// Training keeps every output that backward reads (a step's own, or its consumer's input: through
// views, the output of the last step before them that computes); every other output is read only
// by the next computing step's forward, so two transient buffers, used alternately, hold them all.
// Each step's training workspace lives from its forward to its backward; inference shares one.
template <typename T>
typename Plan<T>::Layout& Plan<T>::prepare(int64_t batch, Mode mode) {
    Layout& l = layouts_[int(mode)];
    if (l.batch == batch) return l;
    l.batch = -1;  // until the layout is complete: an allocation failure below leaves none
    const size_t n = steps_.size();
    const bool train = mode == Mode::train;
    std::vector<int64_t> producer(n);  // the step whose output is step i's input (-1: x)
    std::vector<bool> kept(n, false);
    int64_t last = -1;
    for (size_t i = 0; i < n; ++i) {
        producer[i] = last;
        if (!steps_[i]->is_view(mode)) last = int64_t(i);
    }
    if (train)
        for (size_t i = 0; i < n; ++i) {
            if (steps_[i]->needs_output() && !steps_[i]->is_view(mode)) kept[i] = true;
            if (steps_[i]->needs_input() && producer[i] >= 0) kept[producer[i]] = true;
        }
    int64_t total = 0, transient = 0, shared_work = 0, widest = 0;
    l.slots.assign(n, Slot{kInput, kInput, 0, 0, false, false});
    for (size_t i = 0; i < n; ++i) {
        Slot& s = l.slots[i];
        s.view = steps_[i]->is_view(mode);
        s.in_place = steps_[i]->backward_in_place();
        s.counter_offset = uint64_t(batch) * uint64_t(random_before_[i]);
        const int64_t size = batch * steps_[i]->output_shape().size();
        widest = std::max({widest, size, batch * steps_[i]->input_shape().size()});
        if (s.view) continue;
        if (kept[i]) s.out = total, total += size;
        else transient = std::max(transient, size);
        const int64_t work = steps_[i]->workspace(batch, mode);
        if (train) s.work = total, total += work;
        else shared_work = std::max(shared_work, work);
    }
    const int64_t t0 = total, t1 = total + transient, shared = t1 + transient;
    l.data.assign(shared + shared_work, T(0));
    for (size_t i = 0; i < n; ++i) {
        Slot& s = l.slots[i];
        s.in = producer[i] < 0 ? kInput : l.slots[producer[i]].out;
        if (s.view) s.out = s.in;
        else if (!kept[i]) s.out = s.in == t0 ? t1 : t0;
        if (!train) s.work = shared;
    }
    l.final_out = l.slots[n - 1].out;
    for (auto& g : l.grad) g.assign(train ? widest : 0, T(0));
    l.batch = batch;
    return l;
}

template <typename T>
const T* Plan<T>::forward(Layout& l, const T* x, int64_t batch, Mode mode, uint64_t key,
                          uint64_t counter) {
    for (size_t i = 0; i < steps_.size(); ++i) {
        const Slot& s = l.slots[i];
        if (s.view) continue;
        steps_[i]->forward(at(l, s.out), at(l, s.in, x), batch, at(l, s.work),
                           random_of(s, key, counter), mode);
    }
    return at(l, l.final_out, x);
}

template <typename T>
double Plan<T>::loss_and_gradient(T* grad, const T* y, const int64_t* labels, const T* target,
                                  int64_t batch) {
    const int64_t classes = output_shape().size(), n = batch * classes;
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
        case LossKind::nll: return nll<T>(grad, y, labels, batch, classes);
    }
    return 0.0;
}

// grad holds dL/d(output of the last step); walks the steps back to the first that writes
// gradients, whose dx is skipped. Views pass the gradient on as it is.
template <typename T>
void Plan<T>::backward(Layout& l, T* grad, const T* x, int64_t batch, uint64_t key,
                       uint64_t counter) {
    T* dy = grad;
    for (size_t i = steps_.size(); i-- > first_backward_;) {
        const Slot& s = l.slots[i];
        if (s.view) continue;
        T* other = dy == l.grad[0].data() ? l.grad[1].data() : l.grad[0].data();
        T* dx = i == first_backward_ ? nullptr : s.in_place ? dy : other;
        steps_[i]->backward(dx, dy, at(l, s.in, x), at(l, s.out, x), batch, at(l, s.work),
                            random_of(s, key, counter));
        dy = dx;
    }
}

template <typename T>
void Plan<T>::update(const Hyper& h) {
    for (const Update<T>& u : updates_) {
        if (optimizer_ == OptimizerKind::sgd)
            sgd_step<T>(u.param, u.state[0], u.grad, u.n, h.lr, h.momentum, h.weight_decay,
                        h.nesterov);
        else
            adam_step<T>(u.param, u.state[0], u.state[1], u.grad, u.n, h.step, h.lr, h.beta1,
                         h.beta2, h.eps, h.weight_decay);
    }
}

template <typename T>
double Plan<T>::train_step(T* y_out, const T* x, const int64_t* labels, const T* target,
                           int64_t batch, const Hyper& hyper, uint64_t key, uint64_t counter) {
    std::lock_guard<std::mutex> lock(mutex_);
    Layout& l = prepare(batch, Mode::train);
    const T* y = forward(l, x, batch, Mode::train, key, counter);
    if (y_out) std::memcpy(y_out, y, sizeof(T) * batch * output_shape().size());
    T* grad = l.grad[0].data();
    const double loss = loss_and_gradient(grad, y, labels, target, batch);
    backward(l, grad, x, batch, key, counter);
    update(hyper);
    return loss;
}

template <typename T>
void Plan<T>::predict(T* y, const T* x, int64_t batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    Layout& l = prepare(batch, Mode::infer);
    const T* out = forward(l, x, batch, Mode::infer, 0, 0);
    std::memcpy(y, out, sizeof(T) * batch * output_shape().size());
}

template class Plan<float>;
template class Plan<double>;

}  // namespace lamina
