// SGD and Adam updates: one elementwise pass over a parameter, split among threads when long.
// Each variant (weight decay, momentum, Nesterov) is its own branch-free loop, chosen before the
// loop, so that it vectorizes wherever the compiler inlines it (a loop testing the settings per
// element ran scalar once link-time optimization inlined it into the plan).
#include "kernels/optim.h"

#include <cmath>
#include <type_traits>

#include "core/parallel.h"

namespace lamina {

namespace {
constexpr double kMinElementsPerThread = 1 << 15;

// param[lo, hi) -= lr * g with g = grad (+ wd * param) through momentum (+ Nesterov) as asked.
template <bool kDecay, bool kMomentum, bool kNesterov, typename T>
void sgd_range(T* param, T* velocity, const T* grad, int64_t lo, int64_t hi, T lr, T mu, T wd) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
        T g = grad[i];
        if constexpr (kDecay) g += wd * param[i];
        if constexpr (kMomentum) {
            velocity[i] = mu * velocity[i] + g;
            g = kNesterov ? g + mu * velocity[i] : velocity[i];
        }
        param[i] -= lr * g;
    }
}

template <bool kDecay, bool kMomentum, bool kNesterov, typename T>
void sgd_all(T* param, T* velocity, const T* grad, int64_t n, T lr, T mu, T wd) {
    parallel_for(n, 1, kMinElementsPerThread, [&](int64_t lo, int64_t hi) {
        sgd_range<kDecay, kMomentum, kNesterov>(param, velocity, grad, lo, hi, lr, mu, wd);
    });
}

}  // namespace

template <typename T>
void sgd_step(T* param, T* velocity, const T* grad, int64_t n, double lr, double momentum,
              double weight_decay, bool nesterov) {
    const T lr_ = T(lr), mu = T(momentum), wd = T(weight_decay);
    const bool decay = weight_decay != 0.0, use_momentum = momentum != 0.0 && velocity;
    if (!use_momentum) {
        if (decay) return sgd_all<true, false, false>(param, velocity, grad, n, lr_, mu, wd);
        return sgd_all<false, false, false>(param, velocity, grad, n, lr_, mu, wd);
    }
    if (nesterov) {
        if (decay) return sgd_all<true, true, true>(param, velocity, grad, n, lr_, mu, wd);
        return sgd_all<false, true, true>(param, velocity, grad, n, lr_, mu, wd);
    }
    if (decay) return sgd_all<true, true, false>(param, velocity, grad, n, lr_, mu, wd);
    return sgd_all<false, true, false>(param, velocity, grad, n, lr_, mu, wd);
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
    auto range = [&](auto decay, int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) {
            T g = grad[i];
            if constexpr (decltype(decay)::value) g += wd * param[i];
            m[i] = b1 * m[i] + one_minus_b1 * g;
            v[i] = b2 * v[i] + one_minus_b2 * g * g;
            param[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bias2 + eps_);
        }
    };
    parallel_for(n, 4, kMinElementsPerThread, [&](int64_t lo, int64_t hi) {
        if (weight_decay != 0.0) range(std::true_type(), lo, hi);
        else range(std::false_type(), lo, hi);
    });
}

template void sgd_step<float>(float*, float*, const float*, int64_t, double, double, double, bool);
template void sgd_step<double>(double*, double*, const double*, int64_t, double, double, double, bool);
template void adam_step<float>(float*, float*, float*, const float*, int64_t, int64_t, double, double, double, double, double);
template void adam_step<double>(double*, double*, double*, const double*, int64_t, int64_t, double, double, double, double, double);

}  // namespace lamina
