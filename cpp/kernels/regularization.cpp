// Dropout forward and backward. Elements are independent, so threads split the flat index
// range and every element's fate is the same for any split.
#include "kernels/regularization.h"

#include "core/parallel.h"

namespace lamina {

namespace {

constexpr double kMinWorkPerThread = 1 << 15;  // element operations
constexpr double kHashCost = 4;                 // a hash of an index, in element operations

// out[i] = kept(i) ? in[i] * scale : 0, the loop shared by forward and backward.
template <typename T>
void masked_scale(T* out, const T* in, int64_t n, double p, uint64_t key, uint64_t counter) {
    const uint64_t threshold = dropout_threshold(p);
    const T scale = T(1.0 / (1.0 - p));
    parallel_for(n, kHashCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
            out[i] = dropout_keeps(key, counter, uint64_t(i), threshold) ? in[i] * scale : T(0);
    });
}

}  // namespace

template <typename T>
void dropout_forward(T* y, const T* x, int64_t n, double p, uint64_t key, uint64_t counter) {
    masked_scale(y, x, n, p, key, counter);
}

template <typename T>
void dropout_backward(T* dx, const T* dy, int64_t n, double p, uint64_t key, uint64_t counter) {
    masked_scale(dx, dy, n, p, key, counter);
}

void dropout_mask(bool* keep, int64_t n, double p, uint64_t key, uint64_t counter) {
    const uint64_t threshold = dropout_threshold(p);
    parallel_for(n, kHashCost, kMinWorkPerThread, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
            keep[i] = dropout_keeps(key, counter, uint64_t(i), threshold);
    });
}

template void dropout_forward<float>(float*, const float*, int64_t, double, uint64_t, uint64_t);
template void dropout_forward<double>(double*, const double*, int64_t, double, uint64_t, uint64_t);
template void dropout_backward<float>(float*, const float*, int64_t, double, uint64_t, uint64_t);
template void dropout_backward<double>(double*, const double*, int64_t, double, uint64_t, uint64_t);

}  // namespace lamina
