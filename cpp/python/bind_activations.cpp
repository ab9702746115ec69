// Bindings of the activations: activation(x, kind) and activation_backward(dy, saved, kind), one
// entry point for every kind in the name table (python/checks.cpp). Elementwise kinds take any
// contiguous array; the row normalisations (softmax) take a 2-D (rows, cols) array.
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

py::array py_activation(py::array x, const std::string& name) {
    const ActivationKind kind = parse_activation_kind(name);
    check_activation_input(x, kind, "x");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty_like<T>(x);
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        const int64_t n = x.size();
        const int64_t cols = x.ndim() == 2 ? x.shape(1) : 0;
        py::gil_scoped_release release;
        switch (kind.normalization) {
            case Normalization::softmax: softmax_forward<T>(yp, xp, cols ? n / cols : 0, cols); break;
            case Normalization::none:
                switch (kind.elementwise) {
                    case Activation::relu: relu_forward<T>(yp, xp, n); break;
                    case Activation::sigmoid: sigmoid_forward<T>(yp, xp, n); break;
                    case Activation::tanh: tanh_forward<T>(yp, xp, n); break;
                    case Activation::none: break;  // not in the table of standalone kinds
                }
        }
        return y;
    });
}

py::array py_activation_backward(py::array dy, py::array y, const std::string& name) {
    const ActivationKind kind = parse_activation_kind(name);
    check_activation_input(y, kind, "y");
    same_dtype(dy, y, "dy", "y");
    same_shape(dy, y, "dy", "y");
    c_contiguous(dy, "dy");
    return by_dtype(y, "y", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto dx = empty_like<T>(y);
        T* dxp = dx.mutable_data();
        const T *dyp = ptr<T>(dy), *yp = ptr<T>(y);
        const int64_t n = y.size();
        const int64_t cols = y.ndim() == 2 ? y.shape(1) : 0;
        py::gil_scoped_release release;
        switch (kind.normalization) {
            case Normalization::softmax:
                softmax_backward<T>(dxp, dyp, yp, cols ? n / cols : 0, cols);
                break;
            case Normalization::none:
                switch (kind.elementwise) {
                    case Activation::relu: relu_backward<T>(dxp, dyp, yp, n); break;
                    case Activation::sigmoid: sigmoid_backward<T>(dxp, dyp, yp, n); break;
                    case Activation::tanh: tanh_backward<T>(dxp, dyp, yp, n); break;
                    case Activation::none: break;
                }
        }
        return dx;
    });
}

}  // namespace

void bind_activations(py::module_& m) {
    m.def("activation", &py_activation, py::arg("x"), py::arg("kind"));
    m.def("activation_backward", &py_activation_backward, py::arg("dy"), py::arg("y"),
          py::arg("kind"));
}

}  // namespace lamina::python
