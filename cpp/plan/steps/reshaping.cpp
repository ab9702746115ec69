// The flatten step: a new per-sample shape over the same memory. The plan passes the input
// pointer on as the output (a view): no copy, no work, forward or backward.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "plan/step.h"

namespace lamina {

namespace {

template <typename T>
class FlattenStep final : public Step<T> {
  public:
    FlattenStep(const Shape& in, const Shape& out) : Step<T>(in, out) {}

    const char* kind() const override { return "flatten"; }
    bool is_view(Mode) const override { return true; }
    bool needs_input() const override { return false; }
    bool needs_output() const override { return false; }
    bool backward_in_place() const override { return true; }

    // Never called: the plan skips views.
    void forward(T*, const T*, int64_t, T*, const Random&, Mode) override {}
    void backward(T*, T*, const T*, const T*, int64_t, T*, const Random&) override {}
};

}  // namespace

template <typename T>
std::unique_ptr<Step<T>> make_flatten_step(const Shape& in, int64_t start_dim, int64_t end_dim) {
    const int64_t rank = in.rank + 1;  // with the batch, as PyTorch counts
    const int64_t start = start_dim < 0 ? start_dim + rank : start_dim;
    const int64_t end = end_dim < 0 ? end_dim + rank : end_dim;
    const std::string given = "start_dim " + std::to_string(start_dim) + ", end_dim " +
                              std::to_string(end_dim);
    if (start < 0 || start >= rank || end < 0 || end >= rank)
        throw std::invalid_argument(given + " out of range for inputs of rank " +
                                    std::to_string(rank) + " (batch, *" + in.str() + ")");
    if (start > end) throw std::invalid_argument(given + ": start_dim comes after end_dim");
    if (start == 0 && end > 0)
        throw std::invalid_argument(given + " would flatten the batch dimension into the samples");
    Shape out;
    for (int64_t d = 1; d < start; ++d) out.push_back(in[int(d - 1)]);
    if (start > 0) out.push_back(in.size(int(start - 1), int(end)));
    for (int64_t d = std::max<int64_t>(end + 1, 1); d < rank; ++d) out.push_back(in[int(d - 1)]);
    return std::make_unique<FlattenStep<T>>(in, out);
}

template std::unique_ptr<Step<float>> make_flatten_step<float>(const Shape&, int64_t, int64_t);
template std::unique_ptr<Step<double>> make_flatten_step<double>(const Shape&, int64_t, int64_t);

}  // namespace lamina
