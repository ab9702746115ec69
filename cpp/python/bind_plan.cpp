// Binding of the execution plan: _native.Plan(steps, input_shape, loss, optimizer, updates,
// fuse=True), built from named step descriptors ({"kind", "arrays", "attrs"}), whose train_step and
// predict each run as one native call (fuse: a batch norm after a convolution or dense step runs in
// that step's GEMM in predict; Plan.folded lists those batch norms). Every array the plan will
// point into is checked once, at construction (dtype, shape, layout, and that no array a step
// writes shares memory with another the plan holds); each call checks its input and targets.
// Messages name the step: "plan step 2 (dense) weight_grad ...".
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "plan/plan.h"
#include "python/checks.h"
#include "python/plan_descriptors.h"

namespace lamina::python {

namespace {

// An array the plan points into, named for error messages.
struct Kept {
    py::array array;  // a reference, so that NumPy cannot free it while the plan lives
    std::string name;
    std::pair<std::uintptr_t, std::uintptr_t> span;  // its bytes, [first, second)
    bool written;     // a training step writes it (a gradient, an updated parameter, a state)
    long grad = -1;   // for a parameter: its gradient's entry (-1: frozen)
    bool is_parameter = false;
};

bool same_array(const py::array& a, const py::array& b) {
    if (a.data() != b.data() || a.ndim() != b.ndim() || !same_type(a.dtype(), b.dtype()))
        return false;
    for (py::ssize_t d = 0; d < a.ndim(); ++d)
        if (a.shape(d) != b.shape(d)) return false;
    return true;
}

// Owns a Plan<float> or Plan<double> and references to every array it points into. A plan without
// any array (activations, dropout, flatten only) has no dtype of its own: it holds both and runs
// the one of its input's dtype.
class PyPlan {
  public:
    PyPlan(py::object steps, py::object input_shape, const std::string& loss,
           const std::string& optimizer, py::object updates, bool fuse) : fuse_(fuse) {
        if (!py::isinstance<py::list>(steps) && !py::isinstance<py::tuple>(steps))
            fail_type("steps must be a list of step descriptors");
        if (!py::isinstance<py::list>(updates) && !py::isinstance<py::tuple>(updates))
            fail_type("updates must be a list of {'param', 'grad', 'state'} dicts");
        input_shape_ = read_input_shape(input_shape);
        loss_ = parse_loss(loss);
        if (optimizer == "sgd") optimizer_ = OptimizerKind::sgd;
        else if (optimizer == "adam") optimizer_ = OptimizerKind::adam;
        else fail_value("unknown optimizer '" + optimizer + "' (known: sgd, adam)");
        const py::sequence step_list = py::reinterpret_borrow<py::sequence>(steps);
        if (step_list.size() == 0) fail_value("a plan needs at least one step");
        std::vector<StepSpec> specs;
        for (size_t i = 0; i < step_list.size(); ++i) specs.push_back(read_step(step_list[i], i));
        // The model's dtype: that of the first weight (or, for a normalisation without one, its
        // first float array).
        for (const StepSpec& s : specs) {
            for (auto [obj, key] : {std::pair{&s.weight, "weight"}, {&s.bias, "bias"},
                                    {&s.running_mean, "running_mean"},
                                    {&s.running_var, "running_var"}})
                if (!obj->is_none()) {
                    dtype_of_ = inplace_array(*obj, (s.name + " " + key).c_str());
                    kind_ = float_kind(*dtype_of_, (s.name + " " + key).c_str());
                    break;
                }
            if (kind_) break;
        }
        const py::sequence update_list = py::reinterpret_borrow<py::sequence>(updates);
        if (!kind_ || *kind_ == Kind::f32) f_ = build<float>(specs, update_list);
        if (!kind_ || *kind_ == Kind::f64) d_ = build<double>(specs, update_list);
    }

    // The optimizer's settings, kept until they change: Python sends them again only when the
    // optimizer's hyperparameters were assigned, so a step's call carries just its data.
    void set_hyper(double lr, double momentum, double weight_decay, bool nesterov, double beta1,
                   double beta2, double eps) {
        if (optimizer_ == OptimizerKind::sgd && momentum != 0.0 && !every_update_has_state_)
            fail_value("momentum != 0 needs a velocity array in every update (state=[velocity])");
        hyper_ = Hyper{lr, momentum, weight_decay, nesterov, beta1, beta2, eps, 0};
    }

    // Returns the loss, or (loss, output before the update) with want_output. step is Adam's step
    // count for this update (from 1); SGD ignores it. Dropout draws from (key, counter + ...).
    py::object train_step(py::array x, py::array target, int64_t step, bool want_output,
                          py::object key, py::object counter) {
        if (!hyper_) fail_value("set_hyper must be called before the first train_step");
        if (optimizer_ == OptimizerKind::adam && step < 1)
            fail_value("Adam's step count must be >= 1, got " + std::to_string(step));
        const uint64_t k = uint64_arg(key, "key"), c = uint64_arg(counter, "counter");
        Hyper hyper = *hyper_;
        hyper.step = step;
        return run_kind(x) == Kind::f32
                   ? train_step_as<float>(*f_, x, target, hyper, want_output, k, c)
                   : train_step_as<double>(*d_, x, target, hyper, want_output, k, c);
    }

    py::array predict(py::array x) {
        return run_kind(x) == Kind::f32 ? predict_as<float>(*f_, x) : predict_as<double>(*d_, x);
    }

    py::tuple output_shape() const {
        const Shape& s = f_ ? f_->output_shape() : d_->output_shape();
        py::tuple t(s.rank);
        for (int i = 0; i < s.rank; ++i) t[i] = s[i];
        return t;
    }

    // The steps folded into the step before them for inference (a batch norm after a
    // convolution or dense step): each runs as part of that step's GEMM in predict.
    py::tuple folded() const {
        const std::vector<size_t>& f = f_ ? f_->folded() : d_->folded();
        py::tuple t(f.size());
        for (size_t i = 0; i < f.size(); ++i) t[i] = f[i];
        return t;
    }

    int64_t random_per_sample() const {
        return f_ ? f_->random_per_sample() : d_->random_per_sample();
    }

  private:
    static Shape read_input_shape(const py::object& obj) {
        if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
            fail_type("input_shape must be a tuple of ints (the shape of one sample)");
        const py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
        if (seq.size() < 1 || seq.size() > size_t(Shape::kMaxRank))
            fail_value("input_shape must have 1 to " + std::to_string(Shape::kMaxRank) +
                       " dims, got " + std::to_string(seq.size()));
        Shape s;
        for (size_t i = 0; i < seq.size(); ++i) {
            if (!is_int(seq[i])) fail_type("input_shape must be a tuple of ints");
            const int64_t d = int64_value(seq[i], "input_shape");
            if (d < 1)
                fail_value("input_shape dims must be >= 1, got " + std::string(py::str(obj)));
            s.push_back(d);
        }
        return s;
    }

    Kind run_kind(const py::array& x) const { return kind_ ? *kind_ : float_kind(x, "input"); }

    // Checks and keeps an array a step reads or writes; returns its index in kept_.
    long keep(const py::object& obj, const std::string& name, bool written) {
        py::array a = inplace_array(obj, name.c_str());
        same_dtype(a, *dtype_of_, name.c_str(), "the first weight");
        c_contiguous(a, name.c_str());
        if (written) writable(a, name.c_str());
        kept_.push_back({a, name, extent(a), written});
        return long(kept_.size()) - 1;
    }

    // num_batches_tracked: one int64 (shape () or (1,)), written in place when `written`.
    long keep_counter(const py::object& obj, const std::string& name, bool written) {
        py::array a = inplace_array(obj, name.c_str());
        if (!same_type(a.dtype(), int64_))
            fail_type(name + " must be an int64 array, got dtype " +
                      std::string(py::str(a.dtype())));
        if (a.ndim() > 1 || a.size() != 1)
            fail_value(name + " must have shape () or (1,), got " + shape_str(a));
        c_contiguous(a, name.c_str());
        if (written) writable(a, name.c_str());
        kept_.push_back({a, name, extent(a), written});
        return long(kept_.size()) - 1;
    }

    // A normalisation step: its parameters (weight, bias: (C,) for batch_norm, the normalized
    // dims for layer_norm; plan parameters, as a dense step's), their gradients, and batch_norm's
    // running statistics (written by training steps with stats "batch") and batch count.
    template <typename T>
    std::unique_ptr<Step<T>> make_norm_step(const StepSpec& s, const Shape& in) {
        const bool bn = s.kind == StepKind::batch_norm;
        Shape want;  // the shape of weight, bias and the running statistics
        if (bn) {
            if (in.rank < 1 || s.axis < -in.rank || s.axis >= in.rank)
                fail_value(s.name + " attrs['axis'] " + std::to_string(s.axis) +
                           " is out of range for an input of " + in.str() + " per sample");
            want.push_back(in[int(s.axis < 0 ? s.axis + in.rank : s.axis)]);
        } else {
            if (s.normalized_dims < 1 || s.normalized_dims > in.rank)
                fail_value(s.name + " attrs['normalized_dims'] must be in [1, " +
                           std::to_string(in.rank) + "] for an input of " + in.str() +
                           " per sample, got " + std::to_string(s.normalized_dims));
            for (int d = in.rank - int(s.normalized_dims); d < in.rank; ++d) want.push_back(in[d]);
        }
        auto vector = [&](const py::object& obj, const char* key, bool written) -> long {
            if (obj.is_none()) return -1;
            const std::string name = s.name + " " + key;
            const long k = keep(obj, name, written);
            const py::array& a = kept_[k].array;
            bool fits = a.ndim() == want.rank;
            for (int d = 0; fits && d < want.rank; ++d) fits = a.shape(d) == want[d];
            if (!fits)
                fail_value(name + " has shape " + shape_str(a) + ", expected " + want.str() +
                           (bn ? " (one per channel)" : " (the normalized dims)"));
            return k;
        };
        // A parameter and its gradient (null pointers when absent or frozen).
        auto parameter = [&](const py::object& p, const py::object& g, const char* key,
                             const char* grad_key, const T*& value, T*& grad) {
            value = nullptr, grad = nullptr;
            const long k = vector(p, key, false);
            if (k < 0) {
                if (!g.is_none()) fail_value(s.name + " has a " + grad_key + " but no " + key);
                return;
            }
            kept_[k].is_parameter = true;
            value = ptr<T>(kept_[k].array);
            const long d = vector(g, grad_key, true);
            if (d >= 0) grad = mut<T>(kept_[d].array), kept_[k].grad = d;
        };
        const T *gamma, *beta;
        T *dgamma, *dbeta;
        parameter(s.weight, s.weight_grad, "weight", "weight_grad", gamma, dgamma);
        parameter(s.bias, s.bias_grad, "bias", "bias_grad", beta, dbeta);
        if (!bn)
            return make_layer_norm_step<T>(in, gamma, beta, dgamma, dbeta, s.normalized_dims,
                                           s.eps);
        const bool updates = s.stats == BatchStats::batch;  // training updates the statistics
        const long m = vector(s.running_mean, "running_mean", updates);
        const long v = vector(s.running_var, "running_var", updates);
        int64_t* count = nullptr;
        if (!s.num_batches_tracked.is_none()) {
            const long c = keep_counter(s.num_batches_tracked, s.name + " num_batches_tracked",
                                        updates);
            count = const_cast<int64_t*>(ptr<int64_t>(kept_[c].array));
        }
        // Written only when `updates` (checked writable then); read-only arrays serve otherwise.
        auto stat = [&](long k) {
            return k < 0 ? nullptr : const_cast<T*>(ptr<T>(kept_[k].array));
        };
        return make_batch_norm_step<T>(in, gamma, beta, dgamma, dbeta, stat(m), stat(v), count,
                                       s.axis, s.eps, s.momentum, s.unbiased, s.stats,
                                       s.activation);
    }

    // Every pair of arrays the plan holds where one is written must not overlap: tied weights or a
    // gradient aliasing its parameter would otherwise be overwritten mid-step (the Python path
    // handles or rejects those models). Arrays that are only read may share memory.
    void check_overlaps() const {
        for (size_t a = 0; a < kept_.size(); ++a)
            for (size_t b = a + 1; b < kept_.size(); ++b) {
                const Kept &ka = kept_[a], &kb = kept_[b];
                if ((ka.written || kb.written) && ka.span.first < kb.span.second &&
                    kb.span.first < ka.span.second)
                    fail_value(kb.name + " shares memory with " + ka.name +
                               "; a training step writes " + (kb.written ? kb.name : ka.name));
            }
    }

    // The step reads x and the targets after it has begun writing: they must not overlap anything
    // it writes.
    void not_written(const py::array& a, const char* name) const {
        const auto [lo, hi] = extent(a);
        for (size_t k = 0; k < written_.size(); ++k)
            if (lo < written_[k].second && written_[k].first < hi)
                fail_value(std::string(name) + " shares memory with " +
                           kept_[written_index_[k]].name +
                           ", which a training step writes; pass a copy");
    }

    template <typename T>
    std::unique_ptr<Step<T>> make_step(const StepSpec& s, const Shape& in) {
        try {
            switch (s.kind) {
                case StepKind::activation:
                    return make_activation_step<T>(in, s.activation, s.negative_slope, s.normalize);
                case StepKind::dropout: return make_dropout_step<T>(in, s.p);
                case StepKind::flatten: return make_flatten_step<T>(in, s.start_dim, s.end_dim);
                case StepKind::max_pool2d: return make_max_pool2d_step<T>(in, s.pool, s.ceil_mode);
                case StepKind::avg_pool2d:
                    return make_avg_pool2d_step<T>(in, s.pool, s.ceil_mode, s.count_include_pad,
                                                   s.divisor_override);
                case StepKind::adaptive_avg_pool2d:
                    return make_adaptive_avg_pool2d_step<T>(in, s.pool.out_h, s.pool.out_w,
                                                            s.pool.channels_last);
                case StepKind::batch_norm:
                case StepKind::layer_norm: return make_norm_step<T>(s, in);
                case StepKind::dense:
                case StepKind::conv2d: break;
            }
            // Handles, not references into kept_, which grows below.
            const long w = keep(s.weight, s.name + " weight", false);
            const py::array W = kept_[w].array;
            const bool conv = s.kind == StepKind::conv2d;
            if (conv) {
                if (W.ndim() != in.rank + 1)
                    fail_value(s.name + " weight has shape " + shape_str(W) + "; an input of " +
                               in.str() + " per sample needs a " + std::to_string(in.rank + 1) +
                               "-D weight");
            } else {
                ndim_is(W, 2, (s.name + " weight").c_str());
            }
            // A convolution's output channels: the weight's first dim, or its last (channels_last).
            const py::ssize_t out_dim = conv && s.conv.channels_last ? W.ndim() - 1 : 0;
            kept_[w].is_parameter = true;
            const T* b = nullptr;
            T *dW = nullptr, *db = nullptr;
            if (!s.weight_grad.is_none()) {
                const long g = keep(s.weight_grad, s.name + " weight_grad", true);
                same_shape(kept_[g].array, W, (s.name + " weight_grad").c_str(), "weight");
                dW = mut<T>(kept_[g].array);
                kept_[w].grad = g;
            }
            if (!s.bias.is_none()) {
                const long i = keep(s.bias, s.name + " bias", false);
                const py::array bias = kept_[i].array;
                ndim_is(bias, 1, (s.name + " bias").c_str());
                dim_is(bias, 0, W.shape(out_dim), (s.name + " bias").c_str(),
                       conv ? "out_channels of the weight" : "out_features of the weight");
                kept_[i].is_parameter = true;
                b = ptr<T>(bias);
                if (!s.bias_grad.is_none()) {
                    const long g = keep(s.bias_grad, s.name + " bias_grad", true);
                    same_shape(kept_[g].array, bias, (s.name + " bias_grad").c_str(), "bias");
                    db = mut<T>(kept_[g].array);
                    kept_[i].grad = g;
                }
            } else if (!s.bias_grad.is_none()) {
                fail_value(s.name + " has a bias_grad but no bias");
            }
            if (conv) {
                Shape w_shape;
                for (py::ssize_t d = 0; d < W.ndim(); ++d) w_shape.push_back(W.shape(d));
                return make_conv_step<T>(in, ptr<T>(W), b, dW, db, w_shape, s.conv, s.activation,
                                         s.negative_slope);
            }
            return make_dense_step<T>(in, ptr<T>(W), b, dW, db, W.shape(0), W.shape(1),
                                      s.activation, s.negative_slope, s.normalize);
        } catch (const std::invalid_argument& e) {  // from the step's own shape checks
            fail_value(s.name + " " + e.what());
        }
    }

    template <typename T>
    std::unique_ptr<Plan<T>> build(const std::vector<StepSpec>& specs,
                                   const py::sequence& updates) {
        kept_.clear();
        std::vector<std::unique_ptr<Step<T>>> steps;
        Shape shape = input_shape_;
        for (const StepSpec& s : specs) {
            steps.push_back(make_step<T>(s, shape));
            shape = steps.back()->output_shape();
        }
        std::vector<Update<T>> resolved = read_updates<T>(updates);
        check_overlaps();
        written_.clear();
        written_index_.clear();
        for (size_t k = 0; k < kept_.size(); ++k)
            if (kept_[k].written) written_.push_back(kept_[k].span), written_index_.push_back(k);
        return std::make_unique<Plan<T>>(std::move(steps), loss_, optimizer_, std::move(resolved),
                                         fuse_);
    }

    // updates: [{"param": p, "grad": g, "state": [...]}], each p a step's weight or bias and g the
    // gradient array the plan writes for it.
    template <typename T>
    std::vector<Update<T>> read_updates(const py::sequence& updates) {
        std::vector<Update<T>> out;
        const size_t n_state = optimizer_ == OptimizerKind::sgd ? 1 : 2;
        every_update_has_state_ = true;
        for (size_t i = 0; i < updates.size(); ++i) {
            const std::string where = "updates[" + std::to_string(i) + "]";
            if (!py::isinstance<py::dict>(updates[i]))
                fail_type(where + " must be a dict {'param': ..., 'grad': ..., 'state': [...]}");
            const py::dict u = py::reinterpret_borrow<py::dict>(updates[i]);
            for (auto item : u) {
                const std::string key = py::str(item.first);
                if (key != "param" && key != "grad" && key != "state")
                    fail_value(where + " has an unknown key '" + key +
                               "' (known: param, grad, state)");
            }
            if (!u.contains("param") || !u.contains("grad"))
                fail_value(where + " needs 'param' and 'grad'");
            const py::array param = inplace_array(u["param"], (where + " param").c_str());
            long p = -1;
            for (size_t k = 0; k < kept_.size() && p < 0; ++k)
                if (kept_[k].is_parameter && same_array(kept_[k].array, param)) p = long(k);
            if (p < 0) fail_value(where + " param is not the weight or bias of any plan step");
            // Copies, not references into kept_, which grows below.
            py::array param_array = kept_[p].array;
            const std::string param_name = kept_[p].name;
            const long g = kept_[p].grad;
            const std::string name = where + " (" + param_name + ")";
            if (g < 0)
                fail_value(name + " is frozen (its gradient is None), so it cannot be updated");
            if (kept_[p].written) fail_value(name + " appears twice in updates");
            const py::array grad = inplace_array(u["grad"], (where + " grad").c_str());
            if (!same_array(kept_[g].array, grad))
                fail_value(name + " grad is not " + kept_[g].name + ", which the plan writes");
            writable(param_array, param_name.c_str());
            kept_[p].written = true;
            Update<T> up{mut<T>(param_array), ptr<T>(kept_[g].array), {nullptr, nullptr},
                         int64_t(param_array.size())};
            const py::object state_obj =
                u.contains("state") ? py::object(u["state"]) : py::object(py::list());
            if (!py::isinstance<py::list>(state_obj) && !py::isinstance<py::tuple>(state_obj))
                fail_type(name + " state must be a list of arrays");
            const py::sequence state = py::reinterpret_borrow<py::sequence>(state_obj);
            if (state.size() != n_state && !(optimizer_ == OptimizerKind::sgd && state.size() == 0))
                fail_value(name + " has " + std::to_string(state.size()) +
                           " optimizer state arrays; " +
                           (optimizer_ == OptimizerKind::sgd ? "sgd takes [] or [velocity]"
                                                             : "adam takes [m, v]"));
            for (size_t k = 0; k < state.size(); ++k) {
                const std::string state_name = name + " state[" + std::to_string(k) + "]";
                const long s = keep(state[k], state_name, true);
                same_shape(kept_[s].array, param_array, state_name.c_str(), param_name.c_str());
                up.state[k] = mut<T>(kept_[s].array);
            }
            every_update_has_state_ = every_update_has_state_ && state.size() == n_state;
            out.push_back(up);
        }
        return out;
    }

    template <typename T>
    const py::dtype& dtype_of() const { return std::is_same_v<T, float> ? float32_ : float64_; }

    template <typename T>
    void check_input(const Plan<T>& plan, const py::array& x) {
        if (!same_type(x.dtype(), dtype_of<T>()))
            fail_type("input has dtype " + std::string(py::str(x.dtype())) + ", the model's is " +
                      std::string(py::str(py::dtype::of<T>())));
        const Shape& in = plan.input_shape();
        bool fits = x.ndim() == in.rank + 1;
        for (int d = 0; fits && d < in.rank; ++d) fits = x.shape(d + 1) == in[d];
        if (!fits)
            fail_value("input has shape " + shape_str(x) + " but the plan takes (batch, *" +
                       in.str() + ")");
        c_contiguous(x, "input");
    }

    // Before anything runs (nothing is written when a step cannot take the batch): batch
    // statistics need more than one value per channel.
    template <typename T>
    void check_batch(const Plan<T>& plan, int64_t batch, Mode mode) {
        const size_t i = plan.too_small_for(batch, mode);
        if (i == plan.size()) return;
        const Step<T>& step = plan.step(i);
        fail_value("plan step " + std::to_string(i) + " (" + step.kind() + ") needs a batch of " +
                   std::to_string(step.min_batch(mode)) + " or more " +
                   (mode == Mode::train ? "in training" : "in inference") +
                   ": its batch statistics need more than one value per channel, and a sample " +
                   step.input_shape().str() + " has one; got a batch of " +
                   std::to_string(batch));
    }

    template <typename T>
    py::object train_step_as(Plan<T>& plan, const py::array& x, const py::array& target,
                             const Hyper& hyper, bool want_output, uint64_t key, uint64_t counter) {
        check_input(plan, x);
        const int64_t batch = x.shape(0);
        if (batch == 0) fail_value("a training step needs at least one sample");
        check_batch(plan, batch, Mode::train);
        const Shape& out = plan.output_shape();
        if (out.rank != 1)
            fail_value("the loss needs a 2-D (batch, classes) output, but this plan's output per "
                       "sample is " + out.str());
        const int64_t classes = out[0];
        const bool labels = same_type(target.dtype(), int64_);
        const bool by_class = loss_ == LossKind::cross_entropy ||
                              loss_ == LossKind::probability_cross_entropy ||
                              loss_ == LossKind::nll;
        c_contiguous(target, "target");
        if (labels) {
            if (!by_class) fail_type("integer labels need a cross-entropy or nll loss");
            check_labels(target, batch, classes, "batch size of the input");
        } else {
            if (loss_ == LossKind::nll)
                fail_type("the nll loss takes int64 class labels, got dtype " +
                          std::string(py::str(target.dtype())));
            if (!same_type(target.dtype(), dtype_of<T>()))
                fail_type("target must have the model's dtype");
            ndim_is(target, 2, "target");
            dim_is(target, 0, batch, "target", "batch size of the input");
            dim_is(target, 1, classes, "target", "outputs per sample");
        }
        not_written(x, "input");
        not_written(target, labels ? "labels" : "target");
        py::object result;  // null unless asked for: a step allocates nothing by default
        T* yp = nullptr;
        if (want_output) {
            auto y = empty<T>({batch, classes});
            yp = y.mutable_data();
            result = y;
        }
        const T* xp = ptr<T>(x);
        const int64_t* lp = labels ? ptr<int64_t>(target) : nullptr;
        const T* tp = labels ? nullptr : ptr<T>(target);
        double loss;
        {
            py::gil_scoped_release release;
            loss = plan.train_step(yp, xp, lp, tp, batch, hyper, key, counter);
        }
        if (want_output) return py::make_tuple(loss, result);
        return py::float_(loss);
    }

    template <typename T>
    py::array predict_as(Plan<T>& plan, const py::array& x) {
        check_input(plan, x);
        const int64_t batch = x.shape(0);
        if (batch == 0)
            fail_value("predict: x must hold at least one sample, got shape " + shape_str(x));
        check_batch(plan, batch, Mode::infer);
        // Same contract as the Python predict: a NaN or Inf input is an error, not a NaN output.
        const T* xv = ptr<T>(x);
        for (int64_t i = 0; i < x.size(); ++i)
            if (!std::isfinite(xv[i]))
                fail_value("predict: x contains NaN or Inf (first at flat index " +
                           std::to_string(i) + ")");
        const Shape& out = plan.output_shape();
        std::vector<py::ssize_t> shape(out.rank + 1, batch);  // (batch, *output_shape)
        for (int d = 0; d < out.rank; ++d) shape[d + 1] = out[d];
        auto y = empty<T>(std::move(shape));
        T* yp = y.mutable_data();
        {
            py::gil_scoped_release release;
            plan.predict(yp, xv, batch);
        }
        return y;
    }

    // Looked up once: each step compares its arrays' dtypes with these.
    const py::dtype float32_ = py::dtype::of<float>(), float64_ = py::dtype::of<double>(),
                    int64_ = py::dtype::of<int64_t>();
    Shape input_shape_;
    std::optional<Kind> kind_;          // the arrays' dtype; none for a plan without arrays
    std::optional<py::array> dtype_of_;  // the first weight, whose dtype every array must have
    bool every_update_has_state_ = true;
    bool fuse_ = true;  // fold inference batch norms into the GEMM before them
    std::optional<Hyper> hyper_;  // the optimizer's settings, once set_hyper has been called
    LossKind loss_ = LossKind::mse;
    OptimizerKind optimizer_ = OptimizerKind::sgd;
    std::unique_ptr<Plan<float>> f_;
    std::unique_ptr<Plan<double>> d_;
    std::vector<Kept> kept_;
    // The byte spans of the arrays a training step writes, and their entries in kept_: each
    // step's input and targets are checked against them.
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> written_;
    std::vector<size_t> written_index_;
};

// ---- train_step as a plain METH_FASTCALL method ------------------------------------------------
//
// train_step is the one call a training loop makes per batch. pybind11 keeps up to 6 call
// arguments inline and allocates beyond that; train_step has 7 with self, which cost ~0.1 us of
// the 2 us step of a small model. So it is bound here as a method that reads its own arguments,
// the same way pybind11 would (ndarrays as they are, an int, a bool).

constexpr const char* kTrainStepArgs[] = {"x", "target", "step", "want_output", "key", "counter"};
constexpr Py_ssize_t kTrainStepArgCount = 6;

// The argument objects by position, from positional arguments and keywords.
void collect_arguments(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                       PyObject* (&out)[kTrainStepArgCount]) {
    if (nargs > kTrainStepArgCount)
        fail_type(
            "train_step() takes 6 arguments (x, target, step, want_output, key, counter), got " +
            std::to_string(nargs));
    for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
    const Py_ssize_t n_keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < n_keywords; ++k) {
        const std::string name = py::str(PyTuple_GET_ITEM(kwnames, k));
        Py_ssize_t i = 0;
        while (i < kTrainStepArgCount && name != kTrainStepArgs[i]) ++i;
        if (i == kTrainStepArgCount)
            fail_type("train_step() got an unexpected keyword argument '" + name + "'");
        if (out[i]) fail_type("train_step() got multiple values for argument '" + name + "'");
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < kTrainStepArgCount; ++i)
        if (!out[i])
            fail_type(std::string("train_step() missing argument '") + kTrainStepArgs[i] + "'");
}

py::array as_array(PyObject* obj, const char* name) {
    if (!py::isinstance<py::array>(obj))  // never converted, as pybind11 takes a py::array
        fail_type(std::string("train_step(): ") + name + " must be a NumPy array");
    return py::reinterpret_borrow<py::array>(obj);
}

// An int (or an integer NumPy scalar) in int64's range, as pybind11 would take it.
int64_t step_arg(PyObject* value) {
    if (PyFloat_Check(value) || !PyIndex_Check(value))
        fail_type("train_step(): step must be an int");
    const py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(value));
    if (!index) throw py::error_already_set();
    int overflow = 0;
    const long long step = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
    if (overflow) fail_type("train_step(): step is out of int64's range");
    if (step == -1 && PyErr_Occurred()) throw py::error_already_set();
    return step;
}

PyObject* train_step_fastcall(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames) {
    try {
        PyObject* a[kTrainStepArgCount] = {};
        collect_arguments(args, nargs, kwnames, a);
        PyPlan& plan = py::handle(self).cast<PyPlan&>();
        const int64_t step = step_arg(a[2]);
        int want_output = -1;
        if (PyBool_Check(a[3]) || std::string(Py_TYPE(a[3])->tp_name) == "numpy.bool")
            want_output = PyObject_IsTrue(a[3]);
        if (want_output < 0) fail_type("train_step(): want_output must be True or False");
        return plan.train_step(as_array(a[0], "x"), as_array(a[1], "target"), step, want_output,
                               py::reinterpret_borrow<py::object>(a[4]),
                               py::reinterpret_borrow<py::object>(a[5]))
            .release()
            .ptr();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {  // value_error, type_error, cast_error, ...
        e.set_error();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

PyMethodDef train_step_def = {
    "train_step", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(train_step_fastcall)),
    METH_FASTCALL | METH_KEYWORDS,
    "train_step(self, x, target, step, want_output, key, counter)\n\n"
    "One training step: forward, loss, backward, optimizer update. Returns the loss, or\n"
    "(loss, output before the update) with want_output. step is Adam's step count (from 1);\n"
    "dropout steps draw from (key, counter + the elements earlier dropout steps drew)."};

}  // namespace

void bind_plan(py::module_& m) {
    py::class_<PyPlan> cls(m, "Plan");
    cls.def(py::init<py::object, py::object, const std::string&, const std::string&, py::object,
                     bool>(),
            py::arg("steps"), py::arg("input_shape"), py::arg("loss"), py::arg("optimizer"),
            py::arg("updates"), py::arg("fuse") = true)
        .def("set_hyper", &PyPlan::set_hyper, py::arg("lr"), py::arg("momentum"),
             py::arg("weight_decay"), py::arg("nesterov"), py::arg("beta1"), py::arg("beta2"),
             py::arg("eps"))
        .def("predict", &PyPlan::predict, py::arg("x"))
        .def_property_readonly("output_shape", &PyPlan::output_shape)
        .def_property_readonly("random_per_sample", &PyPlan::random_per_sample)
        .def_property_readonly("folded", &PyPlan::folded);
    PyObject* descriptor =
        PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &train_step_def);
    if (!descriptor) throw py::error_already_set();
    cls.attr("train_step") = py::reinterpret_steal<py::object>(descriptor);
}

}  // namespace lamina::python
