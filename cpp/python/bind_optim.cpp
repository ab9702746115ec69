// Bindings of the optimizer updates (SGD, Adam), in place on a parameter and its state arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "kernels/optim.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

// param and every state array: same dtype and shape, C-contiguous, writable, not sharing memory.
void check_state(py::array& param, const py::array& grad, std::vector<std::pair<py::array*, const char*>> state) {
    float_kind(param, "param");
    c_contiguous(param, "param");
    writable(param, "param");
    same_dtype(grad, param, "grad", "param");
    same_shape(grad, param, "grad", "param");
    c_contiguous(grad, "grad");
    no_overlap(param, grad, "param", "grad");
    for (auto [arr, name] : state) {
        same_dtype(*arr, param, name, "param");
        same_shape(*arr, param, name, "param");
        c_contiguous(*arr, name);
        writable(*arr, name);
        no_overlap(*arr, param, name, "param");
        no_overlap(*arr, grad, name, "grad");
    }
}

void py_sgd_step(py::object param_obj, py::array grad, py::object velocity, double lr, double momentum,
                 double weight_decay, bool nesterov) {
    py::array param = inplace_array(param_obj, "param");
    finite_hyper(lr, "lr");
    finite_hyper(momentum, "momentum");
    finite_hyper(weight_decay, "weight_decay");
    py::array v;
    std::vector<std::pair<py::array*, const char*>> state;
    if (!velocity.is_none()) {
        v = inplace_array(velocity, "velocity");
        state.push_back({&v, "velocity"});
    } else if (momentum != 0.0) {
        fail_value("momentum != 0 needs a velocity buffer");
    }
    check_state(param, grad, state);
    by_dtype(param, "param", [&](auto tag) {
        using T = decltype(tag);
        T* pp = mut<T>(param);
        T* vp = velocity.is_none() ? nullptr : mut<T>(v);
        const T* gp = ptr<T>(grad);
        const int64_t n = param.size();
        py::gil_scoped_release release;
        sgd_step<T>(pp, vp, gp, n, lr, momentum, weight_decay, nesterov);
        return 0;
    });
}

void py_adam_step(py::object param_obj, py::array grad, py::object m_obj, py::object v_obj, int64_t step, double lr,
                  double beta1, double beta2, double eps, double weight_decay) {
    py::array param = inplace_array(param_obj, "param"), m = inplace_array(m_obj, "m"),
              v = inplace_array(v_obj, "v");
    if (step < 1) fail_value("step must be >= 1, got " + std::to_string(step));
    for (auto [value, name] : {std::pair{lr, "lr"}, {beta1, "beta1"}, {beta2, "beta2"},
                               {eps, "eps"}, {weight_decay, "weight_decay"}})
        finite_hyper(value, name);
    check_state(param, grad, {{&m, "m"}, {&v, "v"}});
    no_overlap(m, v, "m", "v");
    by_dtype(param, "param", [&](auto tag) {
        using T = decltype(tag);
        T *pp = mut<T>(param), *mp = mut<T>(m), *vp = mut<T>(v);
        const T* gp = ptr<T>(grad);
        const int64_t n = param.size();
        py::gil_scoped_release release;
        adam_step<T>(pp, mp, vp, gp, n, step, lr, beta1, beta2, eps, weight_decay);
        return 0;
    });
}

}  // namespace

void bind_optim(py::module_& m) {
    m.def("sgd_step", &py_sgd_step, py::arg("param"), py::arg("grad"), py::arg("velocity"),
          py::arg("lr"), py::arg("momentum"), py::arg("weight_decay"), py::arg("nesterov"));
    m.def("adam_step", &py_adam_step, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
          py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("weight_decay"));
}

}  // namespace lamina::python
