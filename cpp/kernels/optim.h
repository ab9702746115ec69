// Optimizer updates, in place on a parameter and its state, with PyTorch's semantics.
#pragma once
#include <cstdint>

namespace lamina {

// g = grad + wd*param; with momentum: v = momentum*v + g, g = nesterov ? g + momentum*v : v;
// param -= lr*g. velocity may be null when momentum == 0.
template <typename T>
void sgd_step(T* param, T* velocity,  // param, velocity are (n,), updated in place
              const T* grad,          // grad is (n,)
              int64_t n, double lr, double momentum, double weight_decay, bool nesterov);

// Adam with L2 weight decay folded into the gradient (torch.optim.Adam):
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
template <typename T>
void adam_step(T* param, T* m, T* v,  // param, m, v are (n,), updated in place
               const T* grad,         // grad is (n,)
               int64_t n, int64_t step, double lr, double beta1, double beta2, double eps,
               double weight_decay);

}  // namespace lamina
