// Bindings of the GEMM engine: gemm (C = act(alpha A B + beta C + bias) in place), and the
// engine's settings that tests aim at: the blocking table in use and the packing mode.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "gemm/gemm.h"
#include "gemm/kernel.h"
#include "python/checks.h"

namespace lamina::python {

namespace {


// c = act(alpha * a @ b + beta * c + bias), in place on c.
void py_gemm(py::object c_obj, py::array a, py::array b, py::object bias, double alpha, double beta,
             py::object activation, double negative_slope) {
    py::array c = inplace_array(c_obj, "c");
    const Activation act = parse_activation(activation);
    check_negative_slope(act, negative_slope);
    ndim_is(a, 2, "a");
    ndim_is(b, 2, "b");
    ndim_is(c, 2, "c");
    float_kind(a, "a");  // first: the stride checks below divide by the element size
    same_dtype(b, a, "b", "a");
    same_dtype(c, a, "c", "a");
    const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
    dim_is(b, 0, K, "b", "rows of b = columns of a");
    dim_is(c, 0, M, "c", "rows of a");
    dim_is(c, 1, N, "c", "columns of b");
    c_contiguous(c, "c");
    writable(c, "c");
    no_overlap(c, a, "c", "a");
    no_overlap(c, b, "c", "b");
    py::array bias_arr;
    if (!bias.is_none()) {
        bias_arr = py::array::ensure(bias);
        if (!bias_arr) fail_type("bias must be an array");
        same_dtype(bias_arr, a, "bias", "a");
        ndim_is(bias_arr, 1, "bias");
        dim_is(bias_arr, 0, N, "bias", "columns of the output");
        c_contiguous(bias_arr, "bias");
        no_overlap(c, bias_arr, "c", "bias");
    }
    auto [rsa, csa] = element_strides(a, "a");
    auto [rsb, csb] = element_strides(b, "b");
    by_dtype(a, "a", [&](auto tag) {
        using T = decltype(tag);
        const T* bp = bias.is_none() ? nullptr : ptr<T>(bias_arr);
        T* cp = mut<T>(c);
        const T* ap = ptr<T>(a);
        const T* bb = ptr<T>(b);
        py::gil_scoped_release release;
        gemm<T>(cp, N, ap, rsa, csa, bb, rsb, csb, bp, M, N, K, T(alpha), T(beta), act,
                T(negative_slope));
        return 0;
    });
}

// The active blocking table row for a dtype, so tests can aim shapes at tile and block edges.
template <typename T>
py::dict blocking_of() {
    const Blocking<T>& b = active_blocking<T>();
    py::dict d;
    d["isa"] = b.isa;
    d["MR"] = b.MR;
    d["NR"] = b.NR;
    d["MC"] = b.MC;
    d["KC"] = b.KC;
    d["NC"] = b.NC;
    return d;
}

}  // namespace

void bind_gemm(py::module_& m) {
    m.def("gemm", &py_gemm, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"),
          py::arg("alpha"), py::arg("beta"), py::arg("activation"),
          py::arg("negative_slope") = 0.01);
    m.def("blocking", [](py::object dtype) {
        return py::dtype::from_args(dtype).is(py::dtype::of<float>()) ? blocking_of<float>()
                                                                       : blocking_of<double>();
    });
    m.def("packing", &gemm_packing);
    m.def("set_packing", [](const std::string& mode) {
        if (!set_gemm_packing(mode.c_str()))
            fail_value("packing mode '" + mode + "' is unknown (auto, packed or in_place)");
    });
}

}  // namespace lamina::python
