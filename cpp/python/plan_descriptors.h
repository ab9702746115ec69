// The plan's step descriptors, read from Python: {"kind", "arrays", "attrs"} dicts checked apart
// from the dtype (names, kinds, attribute values) into StepSpecs, from which bind_plan.cpp builds
// the steps. Included only by cpp/python/.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "plan/step.h"
#include "python/checks.h"

namespace lamina::python {

enum class StepKind {
    dense, conv2d, activation, dropout, flatten, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
    batch_norm, layer_norm
};

// A step descriptor, read and checked apart from the dtype: names, kinds and attribute values.
struct StepSpec {
    std::string name;  // "plan step 2 (dense)"
    StepKind kind;
    py::object weight, bias, weight_grad, bias_grad;  // None when not given
    py::object running_mean, running_var, num_batches_tracked;  // batch_norm; None when not given
    Activation activation = Activation::none;
    double negative_slope = 0.01;
    Normalization normalize = Normalization::none;
    double p = 0.0;
    int64_t start_dim = 1, end_dim = -1;
    ConvShape conv{};  // conv2d: stride, padding, dilation, groups, layout (sizes from the shapes)
    Pool2d pool;  // pooling: window sizes and layout (the input sizes come with the shape)
    bool ceil_mode = false, count_include_pad = true;
    int64_t divisor_override = 0;  // 0: none
    // batch_norm (eps also layer_norm's)
    int64_t axis = 0;
    double eps = 1e-5, momentum = 0.1;  // momentum NaN: None (a cumulative average)
    bool unbiased = true;
    BatchStats stats = BatchStats::batch;
    int64_t normalized_dims = 1;  // layer_norm
};

// Descriptor i of the list, checked: a ValueError or TypeError names the step ("plan step 2
// (dense)").
StepSpec read_step(const py::handle& obj, size_t i);

bool is_int(const py::handle& v);  // a Python int, not a bool
// The value of an int (checked by the caller) in int64's range, else a ValueError.
int64_t int64_value(const py::handle& v, const std::string& what);

}  // namespace lamina::python
