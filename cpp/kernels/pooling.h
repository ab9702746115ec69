// 2-D pooling, forward and backward: max (with its argmax), average (PyTorch's divisor rules) and
// adaptive average, on (N, C, H, W) channels_first or (N, H, W, C) channels_last arrays, both read
// in place. Threads split output rows (forward) or whole planes / samples (backward's scatter), so
// every result is bitwise the same for any thread count. 1-D pooling is the same with H = 1.
#pragma once
#include <cstdint>
#include <string>

namespace lamina {

// The sizes of one pooling call. Padding may be asymmetric: padded cells never win a max and are
// counted in an average only with count_include_pad.
struct Pool2d {
    int64_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
    int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
    int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
    int64_t dilation_h = 1, dilation_w = 1;
    bool channels_last = false;

    int64_t input_size() const { return batch * channels * in_h * in_w; }
    int64_t output_size() const { return batch * channels * out_h * out_w; }
};

// Kernel, stride and dilation are in [1, kPoolMax), padding in [0, kPoolMax): with those bounds
// no size arithmetic below can overflow int64.
constexpr int64_t kPoolMax = int64_t(1) << 31;

// Output length along one axis: (in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride + 1,
// floor or ceil; with ceil_mode the last window is dropped when it starts at or past in + pad_begin
// (PyTorch's rule). Below 1 when the kernel is larger than the padded input.
int64_t pool_output_length(int64_t in, int64_t kernel, int64_t stride, int64_t pad_begin,
                           int64_t pad_end, int64_t dilation, bool ceil_mode);

// Fills out_h and out_w from the rest of g; returns "" or why the geometry is invalid (sizes out of
// range, a kernel larger than the padded input, a window that lies entirely in the padding).
std::string pool2d_plan(Pool2d& g, bool ceil_mode);

// y = the max over each window; indices (when not null) = the flat index h*W + w of the winning
// cell in x's (H, W) plane. Ties go to the first cell in row-major window order; a NaN wins
// (the last NaN of the window), as in PyTorch. I is int64_t, or int32_t when in_h*in_w < 2^31.
template <typename T, typename I>
void max_pool2d_forward(T* y,          // y is (N, C, Ho, Wo) or (N, Ho, Wo, C)
                        I* indices,    // indices is y's shape, or null
                        const T* x,    // x is (N, C, H, W) or (N, H, W, C)
                        const Pool2d& g);

// dx = 0, then dx[plane][indices[o]] += dy[o] for every output o (windows that overlap add up).
// Only batch, channels, in_h, in_w, out_h, out_w and channels_last of g are read; every index is
// in [0, in_h*in_w) (checked by the caller).
template <typename T, typename I>
void max_pool2d_backward(T* dx,            // dx is x's shape
                         const T* dy,      // dy is y's shape
                         const I* indices, // indices is y's shape
                         const Pool2d& g);

// y = sum of the window's input cells / divisor, with PyTorch's divisor: the window clipped to
// the padded input [-top, H + bottom) x [-left, W + right) when count_include_pad, else to the
// input; divisor_override > 0 replaces both.
template <typename T>
void avg_pool2d_forward(T* y,        // y is (N, C, Ho, Wo) or (N, Ho, Wo, C)
                        const T* x,  // x is (N, C, H, W) or (N, H, W, C)
                        const Pool2d& g, bool count_include_pad, int64_t divisor_override);

// dx = 0, then each dy / divisor added to every input cell of its window.
template <typename T>
void avg_pool2d_backward(T* dx,        // dx is x's shape
                         const T* dy,  // dy is y's shape
                         const Pool2d& g, bool count_include_pad, int64_t divisor_override);

// Output cell (i, j) averages rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1 and columns alike
// (PyTorch's adaptive_avg_pool2d). Only the sizes and channels_last of g are read.
template <typename T>
void adaptive_avg_pool2d_forward(T* y,        // y is (N, C, Ho, Wo) or (N, Ho, Wo, C)
                                 const T* x,  // x is (N, C, H, W) or (N, H, W, C)
                                 const Pool2d& g);

template <typename T>
void adaptive_avg_pool2d_backward(T* dx,        // dx is x's shape
                                  const T* dy,  // dy is y's shape
                                  const Pool2d& g);

}  // namespace lamina
