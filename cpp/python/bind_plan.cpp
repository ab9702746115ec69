// Binding of the execution plan: _native.Plan, a compiled Sequential whose train_step and predict
// each run as one native call. Checks every array the plan will point into once, at construction,
// and each step's input and targets on every call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "plan/plan.h"
#include "python/checks.h"

namespace lamina::python {

namespace {

// Owns a Plan<float> or Plan<double> and references to every array it points into, so that NumPy
// cannot free them while the plan lives.
class PyPlan {
  public:
    // layers: list of (W, b or None, dW, db or None, [state arrays], activation, softmax).
    PyPlan(py::list layers, const std::string& loss, const std::string& optimizer) {
        if (layers.size() == 0) fail_value("a plan needs at least one layer");
        const py::array W0 = inplace_array(plan_layer(layers, 0)[0], "weight");
        f32_ = float_kind(W0, "weight") == Kind::f32;
        loss_ = parse_loss(loss);
        if (loss_ == LossKind::nll) fail_value("loss 'nll' has no native plan form yet");
        if (optimizer == "sgd") optimizer_ = OptimizerKind::sgd;
        else if (optimizer == "adam") optimizer_ = OptimizerKind::adam;
        else fail_value("unknown optimizer '" + optimizer + "'");
        if (f32_) build<float>(layers, W0); else build<double>(layers, W0);
    }

    // The optimizer's settings, kept until they change: Python sends them again only when the
    // optimizer's hyperparameters were assigned, so a step's call carries just its data.
    void set_hyper(double lr, double momentum, double weight_decay, bool nesterov, double beta1,
                   double beta2, double eps) {
        if (optimizer_ == OptimizerKind::sgd && momentum != 0.0 && !every_layer_has_state_)
            fail_value("momentum != 0 needs velocity arrays in every plan layer");
        hyper_ = Hyper{lr, momentum, weight_decay, nesterov, beta1, beta2, eps, 0};
    }

    // Returns the loss, or (loss, output before the update) with want_output. step is Adam's step
    // count for this update (from 1); SGD ignores it.
    py::object train_step(py::array x, py::array target, int64_t step, bool want_output) {
        if (!hyper_) fail_value("set_hyper must be called before the first train_step");
        if (optimizer_ == OptimizerKind::adam && step < 1)
            fail_value("Adam's step count must be >= 1, got " + std::to_string(step));
        Hyper hyper = *hyper_;
        hyper.step = step;
        return f32_ ? train_step_as<float>(*f_, x, target, hyper, want_output)
                    : train_step_as<double>(*d_, x, target, hyper, want_output);
    }

    py::array predict(py::array x) { return f32_ ? predict_as<float>(*f_, x) : predict_as<double>(*d_, x); }

  private:
    static py::tuple plan_layer(const py::list& layers, size_t i) {
        py::tuple t = layers[i].cast<py::tuple>();
        if (t.size() != 7) fail_value("plan layer must be (W, b, dW, db, state, activation, softmax)");
        return t;
    }

    // An array the plan points into, named for error messages.
    struct Kept {
        py::array array;  // a reference, so that NumPy cannot free it while the plan lives
        std::string name;
        std::pair<std::uintptr_t, std::uintptr_t> span;  // its bytes, [first, second)
    };

    // Every array the plan keeps is one a step writes (parameters, gradients, optimizer state), so
    // none may share memory with another: tied weights or a gradient aliasing its parameter would
    // otherwise be overwritten mid-step (the Python path handles or rejects those models).
    py::array keep(py::array a, const py::array& dtype_of, size_t layer, const char* what) {
        const std::string name = "plan layer " + std::to_string(layer) + " " + what;
        same_dtype(a, dtype_of, name.c_str(), "weight");
        c_contiguous(a, name.c_str());
        writable(a, name.c_str());
        if (const Kept* k = kept_sharing_memory_with(a))
            fail_value(name + " shares memory with " + k->name + "; a training step writes both");
        kept_.push_back({a, name, extent(a)});
        return a;
    }

    // The step reads x and the targets after it has begun writing: they must not overlap anything
    // it writes.
    void not_written(const py::array& a, const char* name) const {
        if (const Kept* k = kept_sharing_memory_with(a))
            fail_value(std::string(name) + " shares memory with " + k->name +
                       ", which a training step writes; pass a copy");
    }

    const Kept* kept_sharing_memory_with(const py::array& a) const {
        const auto [lo, hi] = extent(a);
        for (const Kept& k : kept_)
            if (lo < k.span.second && k.span.first < hi) return &k;
        return nullptr;
    }

    template <typename T>
    void build(py::list layers, const py::array& W0) {
        std::vector<PlanLayer<T>> out;
        const size_t n_state = optimizer_ == OptimizerKind::sgd ? 2 : 4;
        size_t layers_with_state = 0;
        for (size_t i = 0; i < layers.size(); ++i) {
            py::tuple t = plan_layer(layers, i);
            PlanLayer<T> l{};
            py::array W = keep(inplace_array(t[0], "weight"), W0, i, "weight");
            ndim_is(W, 2, "weight");
            l.out = W.shape(0);
            l.in = W.shape(1);
            // Layers always have features (Linear and Dense check it); an empty one would leave the
            // plan copying from empty buffers (a null pointer to memcpy, undefined behaviour).
            if (l.out == 0 || l.in == 0)
                fail_value("plan layer " + std::to_string(i) + " has a weight of shape " + shape_str(W) +
                           "; every layer needs at least one input and one output feature");
            if (!out.empty() && out.back().out != l.in)
                fail_value("plan layer " + std::to_string(i) + " takes " + std::to_string(l.in) +
                           " features but the layer before gives " + std::to_string(out.back().out));
            py::array dW = keep(inplace_array(t[2], "weight grad"), W0, i, "weight grad");
            same_shape(dW, W, "weight grad", "weight");
            l.W = mut<T>(W);
            l.dW = mut<T>(dW);
            const bool has_bias = !t[1].is_none();
            if (has_bias) {
                py::array b = keep(inplace_array(t[1], "bias"), W0, i, "bias");
                py::array db = keep(inplace_array(t[3], "bias grad"), W0, i, "bias grad");
                ndim_is(b, 1, "bias");
                dim_is(b, 0, l.out, "bias", "out_features");
                same_shape(db, b, "bias grad", "bias");
                l.b = mut<T>(b);
                l.db = mut<T>(db);
            }
            py::list state = t[4].cast<py::list>();
            // SGD: [v_W, v_b] (empty without momentum); Adam: [m_W, m_b, v_W, v_b]; None for no bias.
            if (state.size() != 0 && state.size() != n_state)
                fail_value("plan layer " + std::to_string(i) + " has " + std::to_string(state.size()) +
                           " optimizer state arrays, expected " + std::to_string(n_state));
            for (size_t k = 0; k < state.size(); ++k) {
                if (state[k].is_none()) continue;
                py::array a = keep(inplace_array(state[k], "optimizer state"), W0, i, "optimizer state");
                same_shape(a, k % 2 == 0 ? W : py::array(py::array::ensure(t[1])), "optimizer state",
                           k % 2 == 0 ? "weight" : "bias");
                l.state[k] = mut<T>(a);
            }
            if (optimizer_ == OptimizerKind::adam && state.size() != 4)
                fail_value("Adam needs m and v state arrays");
            // A parameter the optimizer updates with state must have it: a None there was a null
            // pointer for Adam, and SGD would have dropped the momentum of that one parameter.
            for (size_t k = 0; k < state.size(); ++k)
                if (!l.state[k] && (k % 2 == 0 || has_bias))
                    fail_value("plan layer " + std::to_string(i) + " has no optimizer state for its " +
                               (k % 2 == 0 ? "weight" : "bias"));
            layers_with_state += !state.empty();
            l.act = parse_activation(t[5]);
            if (backward_from_input(l.act))
                fail_value("plan layer " + std::to_string(i) + ": activation '" +
                           activation_name(l.act) + "' has no native plan form yet");
            if (!py::isinstance<py::bool_>(t[6])) fail_type("plan layer softmax flag must be True or False");
            l.softmax = t[6].cast<bool>();
            out.push_back(l);
        }
        every_layer_has_state_ = layers_with_state == layers.size();
        auto plan = std::make_unique<Plan<T>>(std::move(out), loss_, optimizer_);
        if constexpr (std::is_same_v<T, float>) f_ = std::move(plan); else d_ = std::move(plan);
    }

    template <typename T>
    void check_input(Plan<T>& plan, const py::array& x) {
        if (!same_type(x.dtype(), py::dtype::of<T>()))
            fail_type("input has dtype " + std::string(py::str(x.dtype())) + ", the model's is " +
                      std::string(py::str(py::dtype::of<T>())));
        ndim_is(x, 2, "input");
        dim_is(x, 1, plan.in_features(), "input", "in_features of the first layer");
        c_contiguous(x, "input");
    }

    template <typename T>
    py::object train_step_as(Plan<T>& plan, const py::array& x, const py::array& target,
                            const Hyper& hyper, bool want_output) {
        check_input(plan, x);
        const int64_t batch = x.shape(0), classes = plan.out_features();
        if (batch == 0) fail_value("a training step needs at least one sample");
        const bool labels = same_type(target.dtype(), py::dtype::of<int64_t>());
        const bool by_class = loss_ == LossKind::cross_entropy || loss_ == LossKind::probability_cross_entropy;
        c_contiguous(target, "target");
        if (labels) {
            if (!by_class) fail_type("integer labels need a cross-entropy loss");
            ndim_is(target, 1, "labels");
            dim_is(target, 0, batch, "labels", "batch size of the input");
            const int64_t* lp = ptr<int64_t>(target);
            for (int64_t r = 0; r < batch; ++r)
                if (lp[r] < 0 || lp[r] >= classes)
                    fail_value("labels[" + std::to_string(r) + "] = " + std::to_string(lp[r]) +
                               " is out of range for " + std::to_string(classes) + " classes");
        } else {
            if (!same_type(target.dtype(), py::dtype::of<T>())) fail_type("target must have the model's dtype");
            ndim_is(target, 2, "target");
            dim_is(target, 0, batch, "target", "batch size of the input");
            dim_is(target, 1, classes, "target", "out_features of the last layer");
        }
        not_written(x, "input");
        not_written(target, labels ? "labels" : "target");
        py::object out;  // null unless asked for: a step allocates nothing by default
        T* yp = nullptr;
        if (want_output) {
            auto y = empty<T>({batch, classes});
            yp = y.mutable_data();
            out = y;
        }
        const T* xp = ptr<T>(x);
        const int64_t* lp = labels ? ptr<int64_t>(target) : nullptr;
        const T* tp = labels ? nullptr : ptr<T>(target);
        double loss;
        {
            py::gil_scoped_release release;
            loss = plan.train_step(yp, xp, lp, tp, batch, hyper);
        }
        if (want_output) return py::make_tuple(loss, out);
        return py::float_(loss);
    }

    template <typename T>
    py::array predict_as(Plan<T>& plan, const py::array& x) {
        check_input(plan, x);
        const int64_t batch = x.shape(0);
        if (batch == 0) fail_value("predict: x must hold at least one sample, got shape " + shape_str(x));
        // Same contract as the Python predict: a NaN or Inf input is an error, not a NaN output.
        const T* xv = ptr<T>(x);
        for (int64_t i = 0; i < x.size(); ++i)
            if (!std::isfinite(xv[i]))
                fail_value("predict: x contains NaN or Inf (first at flat index " + std::to_string(i) + ")");
        auto y = empty<T>({batch, plan.out_features()});
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        {
            py::gil_scoped_release release;
            plan.predict(yp, xp, batch);
        }
        return y;
    }

    bool f32_ = true;
    bool every_layer_has_state_ = false;
    std::optional<Hyper> hyper_;  // the optimizer's settings, once set_hyper has been called
    LossKind loss_ = LossKind::mse;
    OptimizerKind optimizer_ = OptimizerKind::sgd;
    std::unique_ptr<Plan<float>> f_;
    std::unique_ptr<Plan<double>> d_;
    std::vector<Kept> kept_;
};

}  // namespace

void bind_plan(py::module_& m) {
    py::class_<PyPlan>(m, "Plan")
        .def(py::init<py::list, const std::string&, const std::string&>(), py::arg("layers"),
             py::arg("loss"), py::arg("optimizer"))
        .def("set_hyper", &PyPlan::set_hyper, py::arg("lr"), py::arg("momentum"),
             py::arg("weight_decay"), py::arg("nesterov"), py::arg("beta1"), py::arg("beta2"),
             py::arg("eps"))
        .def("train_step", &PyPlan::train_step, py::arg("x"), py::arg("target"), py::arg("step"),
             py::arg("want_output"))
        .def("predict", &PyPlan::predict, py::arg("x"));
}

}  // namespace lamina::python
