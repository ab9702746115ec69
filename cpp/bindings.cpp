// The only file that includes pybind11. Every function here validates its arguments (dtype, rank,
// shape, contiguity, writability, overlap, label range) while holding the GIL, takes raw pointers,
// then releases the GIL for the kernel call. Outputs the caller did not pass are allocated here;
// outputs the caller passed (gradients, parameters, optimizer state) are written in place and
// never silently replaced by a copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <optional>
#include <type_traits>
#include <cstdint>
#include <string>
#include <vector>

#include "activations.h"
#include "dense.h"
#include "gemm/gemm.h"
#include "gemm/kernel.h"
#include "losses.h"
#include "optim.h"
#include "parallel.h"
#include "plan.h"

namespace py = pybind11;
using namespace lamina;

namespace {

// ---- argument checks -------------------------------------------------------------------------

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        s += std::to_string(a.shape(d));
        if (a.ndim() == 1 || d + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
    }
    return s + ")";
}

[[noreturn]] void fail_type(const std::string& msg) { throw py::type_error(msg); }
[[noreturn]] void fail_value(const std::string& msg) { throw py::value_error(msg); }

enum class Kind { f32, f64 };

// Equivalent, not only the same object: a float32 dtype carrying metadata, or one rebuilt by
// newbyteorder("="), is a distinct object that is still float32.
bool same_type(const py::dtype& a, const py::dtype& b) { return a.is(b) || a.equal(b); }

Kind float_kind(const py::array& a, const char* name) {
    if (same_type(a.dtype(), py::dtype::of<float>())) return Kind::f32;
    if (same_type(a.dtype(), py::dtype::of<double>())) return Kind::f64;
    fail_type(std::string(name) + " must be float32 or float64, got dtype " +
              std::string(py::str(a.dtype())));
}

void same_dtype(const py::array& a, const py::array& ref, const char* name, const char* ref_name) {
    if (!same_type(a.dtype(), ref.dtype()))
        fail_type(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) + " but " +
                  ref_name + " has dtype " + std::string(py::str(ref.dtype())) +
                  "; cast one of them");
}

void ndim_is(const py::array& a, py::ssize_t nd, const char* name) {
    if (a.ndim() != nd)
        fail_value(std::string(name) + " must be " + std::to_string(nd) + "-D, got shape " +
                   shape_str(a));
}

void dim_is(const py::array& a, py::ssize_t axis, py::ssize_t want, const char* name,
            const char* what) {
    if (a.shape(axis) != want)
        fail_value(std::string(name) + " has shape " + shape_str(a) + " but its axis " +
                   std::to_string(axis) + " must be " + std::to_string(want) + " (" + what + ")");
}

void same_shape(const py::array& a, const py::array& ref, const char* name, const char* ref_name) {
    bool same = a.ndim() == ref.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == ref.shape(d);
    if (!same)
        fail_value(std::string(name) + " has shape " + shape_str(a) + " but " + ref_name +
                   " has shape " + shape_str(ref));
}

// Also aligned: kernels read whole elements through typed pointers, and an array carved out of a
// byte buffer at an odd offset is C-contiguous but misaligned (undefined behaviour to read).
void c_contiguous(const py::array& a, const char* name) {
    if (!(a.flags() & py::array::c_style))
        fail_value(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
    if (a.itemsize() > 0 && reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize())
        fail_value(std::string(name) + " is not aligned to its element size (pass a copy)");
}

void writable(const py::array& a, const char* name) {
    if (!a.writeable()) fail_value(std::string(name) + " is read-only but is written in place");
}

// An array the caller passed to be written in place: never converted (a converted copy would
// take the update and the caller's array would silently keep its old values).
py::array inplace_array(const py::object& obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
        fail_type(std::string(name) + " must be a NumPy array (it is updated in place)");
    return py::reinterpret_borrow<py::array>(obj);
}

// Byte range [lo, hi) spanned by an array's elements; empty arrays span nothing.
std::pair<std::uintptr_t, std::uintptr_t> extent(const py::array& a) {
    auto base = reinterpret_cast<std::uintptr_t>(a.data());
    if (a.size() == 0) return {base, base};
    std::intptr_t lo = 0, hi = 0;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) {
        const std::intptr_t step = a.strides(d) * (a.shape(d) - 1);
        (step < 0 ? lo : hi) += step;
    }
    return {base + lo, base + hi + a.itemsize()};
}

void no_overlap(const py::array& out, const py::array& in, const char* out_name,
                const char* in_name) {
    auto [a0, a1] = extent(out);
    auto [b0, b1] = extent(in);
    if (a0 < b1 && b0 < a1)
        fail_value(std::string(out_name) + " shares memory with " + in_name +
                   "; pass a separate output array");
}

// Strides of a 2-D operand in elements (the GEMM engine reads any layout, transposes included).
std::pair<int64_t, int64_t> element_strides(const py::array& a, const char* name) {
    const auto item = a.itemsize();
    if (a.strides(0) % item || a.strides(1) % item ||
        reinterpret_cast<std::uintptr_t>(a.data()) % item)
        fail_value(std::string(name) + " is not aligned to its element size");
    return {a.strides(0) / item, a.strides(1) / item};
}

Activation parse_activation(const py::object& act) {
    if (act.is_none()) return Activation::none;
    const std::string s = py::str(act);
    if (s == "relu") return Activation::relu;
    if (s == "sigmoid") return Activation::sigmoid;
    if (s == "tanh") return Activation::tanh;
    if (s == "none" || s == "linear") return Activation::none;
    fail_value("activation must be None, 'relu', 'sigmoid' or 'tanh', got '" + s + "'");
}

template <typename T>
const T* ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <typename T>
T* mut(py::array& a) { return static_cast<T*>(a.mutable_data()); }

template <typename T>
py::array_t<T> empty(std::vector<py::ssize_t> shape) { return py::array_t<T>(shape); }

// Calls f.template operator()<float or double>() for the dtype of `a`.
template <typename F>
auto by_dtype(const py::array& a, const char* name, F&& f) {
    return float_kind(a, name) == Kind::f32 ? f(float{}) : f(double{});
}

// ---- GEMM and dense --------------------------------------------------------------------------

// c = act(alpha * a @ b + beta * c + bias), in place on c.
void py_gemm(py::object c_obj, py::array a, py::array b, py::object bias, double alpha, double beta,
             py::object activation) {
    py::array c = inplace_array(c_obj, "c");
    const Activation act = parse_activation(activation);
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
        gemm<T>(cp, N, ap, rsa, csa, bb, rsb, csb, bp, M, N, K, T(alpha), T(beta), act);
        return 0;
    });
}

// Checks x (M, K), W (N, K) and b (N,) or None; returns (M, K, N).
std::tuple<int64_t, int64_t, int64_t> check_dense(const py::array& x, const py::array& W,
                                                  const py::array* b) {
    float_kind(W, "W");
    ndim_is(x, 2, "x");
    ndim_is(W, 2, "W");
    same_dtype(x, W, "x", "W");
    dim_is(x, 1, W.shape(1), "x", "in_features of W");
    c_contiguous(x, "x");
    c_contiguous(W, "W");
    if (b) {
        same_dtype(*b, W, "b", "W");
        ndim_is(*b, 1, "b");
        dim_is(*b, 0, W.shape(0), "b", "out_features of W");
        c_contiguous(*b, "b");
    }
    return {x.shape(0), x.shape(1), W.shape(0)};
}

py::array py_linear(py::array x, py::array W, py::object b, py::object activation) {
    const Activation act = parse_activation(activation);
    const py::array barr = b.is_none() ? py::array() : py::array::ensure(b);
    if (!b.is_none() && !barr) fail_type("b must be an array");
    auto [M, K, N] = check_dense(x, W, b.is_none() ? nullptr : &barr);
    return by_dtype(W, "W", [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto y = empty<T>({M, N});
        T* yp = y.mutable_data();
        const T* bp = b.is_none() ? nullptr : ptr<T>(barr);
        const T *xp = ptr<T>(x), *Wp = ptr<T>(W);
        py::gil_scoped_release release;
        dense_forward<T>(yp, xp, Wp, bp, M, K, N, act);
        return y;
    });
}

// dW += dy.T @ x and db += dy.sum(0) in place; returns dx = dy @ W (or None).
py::object py_linear_backward(py::array dy, py::array x, py::array W, py::object dW_obj,
                              py::object db, bool need_dx) {
    py::array dW = inplace_array(dW_obj, "dW");
    auto [M, K, N] = check_dense(x, W, nullptr);
    ndim_is(dy, 2, "dy");
    same_dtype(dy, W, "dy", "W");
    dim_is(dy, 0, M, "dy", "batch size of x");
    dim_is(dy, 1, N, "dy", "out_features of W");
    c_contiguous(dy, "dy");
    same_dtype(dW, W, "dW", "W");
    same_shape(dW, W, "dW", "W");
    c_contiguous(dW, "dW");
    writable(dW, "dW");
    for (auto [arr, name] : {std::pair{&dy, "dy"}, {&x, "x"}, {&W, "W"}})
        no_overlap(dW, *arr, "dW", name);
    py::array db_arr;
    if (!db.is_none()) {
        db_arr = inplace_array(db, "db");
        same_dtype(db_arr, W, "db", "W");
        ndim_is(db_arr, 1, "db");
        dim_is(db_arr, 0, N, "db", "out_features of W");
        c_contiguous(db_arr, "db");
        writable(db_arr, "db");
        no_overlap(db_arr, dy, "db", "dy");
        no_overlap(db_arr, dW, "db", "dW");
    }
    return by_dtype(W, "W", [&](auto tag) -> py::object {
        using T = decltype(tag);
        py::object result = py::none();
        T* dxp = nullptr;
        if (need_dx) {
            auto dx = empty<T>({M, K});
            dxp = dx.mutable_data();
            result = dx;
        }
        T* dWp = mut<T>(dW);
        // No columns, nothing to sum: skip db rather than walk M empty rows (M can be 2**40 when
        // dy is (M, 0), which costs nothing to create).
        T* dbp = db.is_none() || N == 0 ? nullptr : mut<T>(db_arr);
        const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *Wp = ptr<T>(W);
        py::gil_scoped_release release;
        dense_backward<T>(dxp, dWp, dbp, dyp, xp, Wp, M, K, N);
        return result;
    });
}

// ---- activations -----------------------------------------------------------------------------

enum class Act { relu, sigmoid, tanh, softmax };

Act parse_act(const std::string& kind) {
    if (kind == "relu") return Act::relu;
    if (kind == "sigmoid") return Act::sigmoid;
    if (kind == "tanh") return Act::tanh;
    if (kind == "softmax") return Act::softmax;
    fail_value("unknown activation '" + kind + "'");
}

// Softmax works on rows of a 2-D array; the others on any contiguous array.
void check_activation_input(const py::array& x, Act act, const char* name) {
    float_kind(x, name);
    c_contiguous(x, name);
    if (act == Act::softmax) ndim_is(x, 2, name);
}

py::array py_activation(py::array x, const std::string& kind) {
    const Act act = parse_act(kind);
    check_activation_input(x, act, "x");
    return by_dtype(x, "x", [&](auto tag) -> py::array {
        using T = decltype(tag);
        py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        T* yp = y.mutable_data();
        const T* xp = ptr<T>(x);
        const int64_t n = x.size();
        const int64_t cols = x.ndim() == 2 ? x.shape(1) : 0;
        py::gil_scoped_release release;
        switch (act) {
            case Act::relu: relu_forward<T>(yp, xp, n); break;
            case Act::sigmoid: sigmoid_forward<T>(yp, xp, n); break;
            case Act::tanh: tanh_forward<T>(yp, xp, n); break;
            case Act::softmax: softmax_forward<T>(yp, xp, cols ? n / cols : 0, cols); break;
        }
        return y;
    });
}

py::array py_activation_backward(py::array dy, py::array y, const std::string& kind) {
    const Act act = parse_act(kind);
    check_activation_input(y, act, "y");
    same_dtype(dy, y, "dy", "y");
    same_shape(dy, y, "dy", "y");
    c_contiguous(dy, "dy");
    return by_dtype(y, "y", [&](auto tag) -> py::array {
        using T = decltype(tag);
        py::array_t<T> dx(std::vector<py::ssize_t>(y.shape(), y.shape() + y.ndim()));
        T* dxp = dx.mutable_data();
        const T *dyp = ptr<T>(dy), *yp = ptr<T>(y);
        const int64_t n = y.size();
        const int64_t cols = y.ndim() == 2 ? y.shape(1) : 0;
        py::gil_scoped_release release;
        switch (act) {
            case Act::relu: relu_backward<T>(dxp, dyp, yp, n); break;
            case Act::sigmoid: sigmoid_backward<T>(dxp, dyp, yp, n); break;
            case Act::tanh: tanh_backward<T>(dxp, dyp, yp, n); break;
            case Act::softmax: softmax_backward<T>(dxp, dyp, yp, cols ? n / cols : 0, cols); break;
        }
        return dx;
    });
}

// ---- losses ----------------------------------------------------------------------------------

// Integer labels (rows,) as int64 in [0, cols), or target probabilities with the logits' shape.
// `on_probabilities`: the input is a softmax output (Keras's from_logits=False), not logits.
py::tuple cross_entropy_impl(py::array logits, py::array target, bool on_probabilities) {
    float_kind(logits, "logits");
    ndim_is(logits, 2, "logits");
    c_contiguous(logits, "logits");
    c_contiguous(target, "target");
    const int64_t rows = logits.shape(0), cols = logits.shape(1);
    const bool labels = same_type(target.dtype(), py::dtype::of<int64_t>());
    if (labels) {
        ndim_is(target, 1, "labels");
        dim_is(target, 0, rows, "labels", "batch size of logits");
        const int64_t* lp = ptr<int64_t>(target);
        for (int64_t r = 0; r < rows; ++r)
            if (lp[r] < 0 || lp[r] >= cols)
                fail_value("labels[" + std::to_string(r) + "] = " + std::to_string(lp[r]) +
                           " is out of range for " + std::to_string(cols) + " classes");
    } else {
        same_dtype(target, logits, "target", "logits");
        same_shape(target, logits, "target", "logits");
    }
    if (rows > 0 && cols == 0) fail_value("logits must have at least one class");
    return by_dtype(logits, "logits", [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        auto dz = empty<T>({rows, cols});
        T* dzp = dz.mutable_data();
        const T* zp = ptr<T>(logits);
        double loss;
        {
            py::gil_scoped_release release;
            if (on_probabilities)
                loss = labels ? probability_cross_entropy_labels<T>(dzp, zp, ptr<int64_t>(target), rows, cols)
                              : probability_cross_entropy_probs<T>(dzp, zp, ptr<T>(target), rows, cols);
            else
                loss = labels ? cross_entropy_labels<T>(dzp, zp, ptr<int64_t>(target), rows, cols)
                              : cross_entropy_probs<T>(dzp, zp, ptr<T>(target), rows, cols);
        }
        return py::make_tuple(loss, dz);
    });
}

py::tuple py_cross_entropy(py::array logits, py::array target) {
    return cross_entropy_impl(logits, target, false);
}

py::tuple py_probability_cross_entropy(py::array probs, py::array target) {
    return cross_entropy_impl(probs, target, true);
}

template <typename Kernel>
py::tuple elementwise_loss(py::array pred, py::array target, const char* pred_name, Kernel kernel) {
    float_kind(pred, pred_name);
    same_dtype(target, pred, "target", pred_name);
    same_shape(target, pred, "target", pred_name);
    c_contiguous(pred, pred_name);
    c_contiguous(target, "target");
    return by_dtype(pred, pred_name, [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        py::array_t<T> grad(std::vector<py::ssize_t>(pred.shape(), pred.shape() + pred.ndim()));
        T* gp = grad.mutable_data();
        const T *pp = ptr<T>(pred), *tp = ptr<T>(target);
        const int64_t n = pred.size();
        double loss;
        {
            py::gil_scoped_release release;
            loss = kernel(gp, pp, tp, n);
        }
        return py::make_tuple(loss, grad);
    });
}

py::tuple py_binary_cross_entropy(py::array logits, py::array target) {
    return elementwise_loss(logits, target, "logits", [](auto* g, auto* z, auto* t, int64_t n) {
        return binary_cross_entropy(g, z, t, n);
    });
}

py::tuple py_probability_binary_cross_entropy(py::array probs, py::array target) {
    return elementwise_loss(probs, target, "probs", [](auto* g, auto* p, auto* t, int64_t n) {
        return probability_binary_cross_entropy(g, p, t, n);
    });
}

py::tuple py_mse(py::array pred, py::array target) {
    return elementwise_loss(pred, target, "pred", [](auto* g, auto* p, auto* t, int64_t n) {
        return mse(g, p, t, n);
    });
}

// ---- optimizers ------------------------------------------------------------------------------

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

void finite_hyper(double value, const char* name) {
    if (!std::isfinite(value)) fail_value(std::string(name) + " must be finite");
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

// ---- execution plan (a compiled Sequential) ----------------------------------------------------

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

    static LossKind parse_loss(const std::string& s) {
        if (s == "cross_entropy") return LossKind::cross_entropy;
        if (s == "binary_cross_entropy") return LossKind::binary_cross_entropy;
        if (s == "mse") return LossKind::mse;
        if (s == "probability_cross_entropy") return LossKind::probability_cross_entropy;
        if (s == "probability_binary_cross_entropy") return LossKind::probability_binary_cross_entropy;
        fail_value("unknown loss '" + s + "'");
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

// ---- build and threads -----------------------------------------------------------------------

py::dict build_info() {
    py::dict info;
    info["version"] = LAMINA_VERSION;
    info["compiler"] = LAMINA_COMPILER;
    info["openmp"] = have_openmp();
#ifdef LAMINA_HAVE_OPENMP
    info["openmp_version"] = _OPENMP;
#endif
    info["isa"] = gemm_isa();
    info["cpu_avx2_fma"] = cpu_has_avx2_fma();
    info["cpu_avx512"] = cpu_has_avx512();
    info["num_threads"] = get_num_threads();
    return info;
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

PYBIND11_MODULE(_native, m) {
    m.doc() = "lamina's native kernels; use lamina.ops, which adds argument coercion";
    m.def("gemm", &py_gemm, py::arg("c"), py::arg("a"), py::arg("b"), py::arg("bias"),
          py::arg("alpha"), py::arg("beta"), py::arg("activation"));
    m.def("linear", &py_linear, py::arg("x"), py::arg("W"), py::arg("b"), py::arg("activation"));
    m.def("linear_backward", &py_linear_backward, py::arg("dy"), py::arg("x"), py::arg("W"),
          py::arg("dW"), py::arg("db"), py::arg("need_dx"));
    m.def("activation", &py_activation, py::arg("x"), py::arg("kind"));
    m.def("activation_backward", &py_activation_backward, py::arg("dy"), py::arg("y"),
          py::arg("kind"));
    m.def("cross_entropy", &py_cross_entropy, py::arg("logits"), py::arg("target"));
    m.def("binary_cross_entropy", &py_binary_cross_entropy, py::arg("logits"), py::arg("target"));
    m.def("mse", &py_mse, py::arg("pred"), py::arg("target"));
    m.def("probability_cross_entropy", &py_probability_cross_entropy, py::arg("probs"),
          py::arg("target"));
    m.def("probability_binary_cross_entropy", &py_probability_binary_cross_entropy,
          py::arg("probs"), py::arg("target"));
    m.def("sgd_step", &py_sgd_step, py::arg("param"), py::arg("grad"), py::arg("velocity"),
          py::arg("lr"), py::arg("momentum"), py::arg("weight_decay"), py::arg("nesterov"));
    m.def("adam_step", &py_adam_step, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
          py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("weight_decay"));
    py::class_<PyPlan>(m, "Plan")
        .def(py::init<py::list, const std::string&, const std::string&>(), py::arg("layers"),
             py::arg("loss"), py::arg("optimizer"))
        .def("set_hyper", &PyPlan::set_hyper, py::arg("lr"), py::arg("momentum"),
             py::arg("weight_decay"), py::arg("nesterov"), py::arg("beta1"), py::arg("beta2"),
             py::arg("eps"))
        .def("train_step", &PyPlan::train_step, py::arg("x"), py::arg("target"), py::arg("step"),
             py::arg("want_output"))
        .def("predict", &PyPlan::predict, py::arg("x"));
    m.def("set_num_threads", [](int n) {
        if (n < 1) fail_value("number of threads must be >= 1, got " + std::to_string(n));
        set_num_threads(n);
    });
    m.def("get_num_threads", &get_num_threads);
    m.def("build_info", &build_info);
    m.def("isa", &gemm_isa);
    m.def("blocking", [](py::object dtype) {
        return py::dtype::from_args(dtype).is(py::dtype::of<float>()) ? blocking_of<float>()
                                                                       : blocking_of<double>();
    });
    m.def("set_isa", [](const std::string& name) {
        if (!set_gemm_isa(name.c_str()))
            fail_value("kernel path '" + name + "' is unknown or not supported by this CPU");
    });
    m.def("packing", &gemm_packing);
    m.def("set_packing", [](const std::string& mode) {
        if (!set_gemm_packing(mode.c_str()))
            fail_value("packing mode '" + mode + "' is unknown (auto, packed or in_place)");
    });
}
