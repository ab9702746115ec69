// Bindings of the activations: activation(x, kind) and activation_backward(dy, saved, kind), one
// entry point for every kind in the name table (python/checks.cpp). Elementwise kinds take any
// contiguous array; the row normalisations (softmax, log_softmax) a 2-D (rows, cols) array.
// `saved` is what the backward pass starts from: the output y, or the input x for leaky_relu,
// gelu and gelu_tanh (backward_from_input).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "kernels/activations.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

void check_activation_input(const py::array& x, const ActivationKind& kind, const char* name) {
    float_kind(x, name);
    c_contiguous(x, name);
    if (kind.normalization != Normalization::none) ndim_is(x, 2, name);
}

py::array py_activation(py::array x, const std::string& name, double negative_slope) {
    const ActivationKind kind = parse_activation_kind(name);
    check_negative_slope(kind.elementwise, negative_slope);
    check_activation_input(x, kind, "x");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty_like<T>(x);
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        const int64_t n = x.size();
        const int64_t cols = x.ndim() == 2 ? x.shape(1) : 0;
        py::gil_scoped_release release;
        if (kind.normalization != Normalization::none)
            normalization_forward<T>(yp, xp, cols ? n / cols : 0, cols, kind.normalization);
        else
            activation_forward<T>(yp, xp, n, kind.elementwise, negative_slope);
        return y;
    });
}

py::array py_activation_backward(py::array dy, py::array saved, const std::string& name,
                                 double negative_slope) {
    const ActivationKind kind = parse_activation_kind(name);
    check_negative_slope(kind.elementwise, negative_slope);
    const char* saved_name = backward_from_input(kind.elementwise) ? "saved (the input x)"
                                                                   : "saved (the output y)";
    check_activation_input(saved, kind, saved_name);
    same_dtype(dy, saved, "dy", saved_name);
    same_shape(dy, saved, "dy", saved_name);
    c_contiguous(dy, "dy");
    return by_dtype(saved, saved_name, [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty_like<T>(saved);
        T* dxp = dx.mutable_data();
        const T *dyp = ptr<T>(dy), *sp = ptr<T>(saved);
        const int64_t n = saved.size();
        const int64_t cols = saved.ndim() == 2 ? saved.shape(1) : 0;
        py::gil_scoped_release release;
        if (kind.normalization != Normalization::none)
            normalization_backward<T>(dxp, dyp, sp, cols ? n / cols : 0, cols, kind.normalization);
        else
            activation_backward<T>(dxp, dyp, sp, n, kind.elementwise, negative_slope);
        return dx;
    });
}

}  // namespace

void bind_activations(py::module_& m) {
    m.def("activation", &py_activation, py::arg("x"), py::arg("kind"),
          py::arg("negative_slope") = 0.01);
    m.def("activation_backward", &py_activation_backward, py::arg("dy"), py::arg("saved"),
          py::arg("kind"), py::arg("negative_slope") = 0.01);
}

}  // namespace lamina::python
