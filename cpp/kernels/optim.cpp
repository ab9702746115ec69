// SGD and Adam updates: one elementwise pass over a parameter, split among threads when long.
#include "kernels/optim.h"

#include <cmath>

#include "core/parallel.h"

namespace lamina {

namespace {
constexpr double kMinElementsPerThread = 1 << 15;
}

template <typename T>
void sgd_step(T* param, T* velocity, const T* grad, int64_t n, double lr, double momentum,
              double weight_decay, bool nesterov) {
    const T lr_ = T(lr), mu = T(momentum), wd = T(weight_decay);
    const bool use_momentum = momentum != 0.0 && velocity;
    parallel_for(n, 1, kMinElementsPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            T g = grad[i];
            if (weight_decay != 0.0) g += wd * param[i];
            if (use_momentum) {
                velocity[i] = mu * velocity[i] + g;
                g = nesterov ? g + mu * velocity[i] : velocity[i];
            }
            param[i] -= lr_ * g;
        }
    });
}

template <typename T>
void adam_step(T* param, T* m, T* v, const T* grad, int64_t n, int64_t step, double lr,
               double beta1, double beta2, double eps, double weight_decay) {
    const double bias1 = 1.0 - std::pow(beta1, double(step));
    const double bias2 = 1.0 - std::pow(beta2, double(step));
    const T step_size = T(lr / bias1), sqrt_bias2 = T(std::sqrt(bias2));
    // 1 - beta in double: in float32, 1 - 0.999f loses four digits to cancellation.
    const T b1 = T(beta1), b2 = T(beta2), one_minus_b1 = T(1.0 - beta1), one_minus_b2 = T(1.0 - beta2);
    const T eps_ = T(eps), wd = T(weight_decay);
    parallel_for(n, 4, kMinElementsPerThread, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            T g = grad[i];
            if (weight_decay != 0.0) g += wd * param[i];
            m[i] = b1 * m[i] + one_minus_b1 * g;
            v[i] = b2 * v[i] + one_minus_b2 * g * g;
            param[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bias2 + eps_);
        }
    });
}

template void sgd_step<float>(float*, float*, const float*, int64_t, double, double, double, bool);
template void sgd_step<double>(double*, double*, const double*, int64_t, double, double, double, bool);
template void adam_step<float>(float*, float*, float*, const float*, int64_t, int64_t, double, double, double, double, double);
template void adam_step<double>(double*, double*, double*, const double*, int64_t, int64_t, double, double, double, double, double);

}  // namespace lamina
