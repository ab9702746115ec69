// The one place the bindings check their arguments (dtype, rank, shape, contiguity, alignment,
// writability, overlap) and turn names into enums (activations, losses), raising TypeError or
// ValueError with the argument's name, its shape and what was expected. Included only by
// cpp/python/.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/activation.h"
#include "kernels/losses.h"

namespace lamina::python {

namespace py = pybind11;

[[noreturn]] void fail_type(const std::string& msg);
[[noreturn]] void fail_value(const std::string& msg);

std::string shape_str(const py::array& a);  // "(3, 4)", as Python prints the shape

enum class Kind { f32, f64 };

// Equivalent, not only the same object: a float32 dtype carrying metadata, or one rebuilt by
// newbyteorder("="), is a distinct object that is still float32.
bool same_type(const py::dtype& a, const py::dtype& b);
Kind float_kind(const py::array& a, const char* name);  // TypeError unless float32 or float64
void same_dtype(const py::array& a, const py::array& ref, const char* name, const char* ref_name);
void ndim_is(const py::array& a, py::ssize_t nd, const char* name);
void dim_is(const py::array& a, py::ssize_t axis, py::ssize_t want, const char* name,
            const char* what);
void same_shape(const py::array& a, const py::array& ref, const char* name, const char* ref_name);
// C-contiguous and aligned to the element size (kernels read whole elements through typed
// pointers).
void c_contiguous(const py::array& a, const char* name);
void writable(const py::array& a, const char* name);

// An array the caller passed to be written in place: never converted (a converted copy would
// take the update and the caller's array would silently keep its old values).
py::array inplace_array(const py::object& obj, const char* name);

// Byte range [lo, hi) spanned by an array's elements; empty arrays span nothing.
std::pair<std::uintptr_t, std::uintptr_t> extent(const py::array& a);
void no_overlap(const py::array& out, const py::array& in, const char* out_name,
                const char* in_name);

// The optional per-output-channel affine of conv2d and linear (scale, shift): both None (empty
// arrays returned) or both 1-D arrays of `channels` values, of ref's dtype, C-contiguous.
std::pair<py::array, py::array> channel_affine(const py::object& scale, const py::object& shift,
                                               const py::array& ref, const char* ref_name,
                                               int64_t channels);

// Strides of a 2-D operand in elements (the GEMM engine reads any layout, transposes included).
std::pair<int64_t, int64_t> element_strides(const py::array& a, const char* name);

// int64 class labels (checked by the caller: dtype, contiguity): 1-D, `rows` of them (rows_are
// says what must match), each in [0, classes).
void check_labels(const py::array& labels, int64_t rows, int64_t classes, const char* rows_are);

void finite_hyper(double value, const char* name);  // ValueError unless finite
void check_negative_slope(Activation act, double negative_slope);  // finite, for leaky_relu
void check_dropout_p(double p, const std::string& name);  // ValueError unless 0 <= p < 1

// An unsigned 64-bit integer argument (a generator key or counter): a Python int in [0, 2**64).
uint64_t uint64_arg(const py::handle& value, const char* name);

// ---- names of activations and losses: one table each (checks.cpp) ----------------------------

// What an activation name stands for: an elementwise function, which the GEMM epilogue can
// apply, or a normalisation over each row (softmax, log_softmax), which it cannot.
struct ActivationKind {
    Activation elementwise = Activation::none;
    Normalization normalization = Normalization::none;
};

// For a fused epilogue (linear, gemm, dense steps): None, "none", "linear" or an elementwise name.
Activation parse_activation(const py::object& name);
// For the standalone activation op: any elementwise or normalisation name ("none" is not one).
ActivationKind parse_activation_kind(const std::string& name);
const char* activation_name(Activation act);
const char* normalization_name(Normalization norm);
Normalization parse_normalization(const py::object& name);  // None, "softmax" or "log_softmax"

LossKind parse_loss(const std::string& name);
const char* loss_name(LossKind loss);

// ---- typed access --------------------------------------------------------------------------

template <typename T>
const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mut(py::array& a) { return static_cast<T*>(a.mutable_data()); }

template <typename T>
py::array_t<T> empty(std::vector<py::ssize_t> shape) { return py::array_t<T>(shape); }

// A new array of T with the shape of `like`.
template <typename T>
py::array_t<T> empty_like(const py::array& like) {
    return py::array_t<T>(std::vector<py::ssize_t>(like.shape(), like.shape() + like.ndim()));
}

// Calls f(float{}) or f(double{}) for the dtype of `a` (TypeError for any other dtype).
template <typename F>
auto by_dtype(const py::array& a, const char* name, F&& f) {
    return float_kind(a, name) == Kind::f32 ? f(float{}) : f(double{});
}

}  // namespace lamina::python
