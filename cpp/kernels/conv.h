// 2-D convolution (cross-correlation, as PyTorch and Keras compute it), forward and backward, as
// implicit GEMMs on the engine: the patches of the input (forward, dW) or of the output gradient
// (dx, a transposed convolution) are gathered straight into the packed panels the micro-kernel
// reads (gemm_ex with a PanelSource), never into an im2col matrix. Both layouts are native:
//   channels_first: x (N, C, H, W), weight (Cout, C/groups, KH, KW), y (N, Cout, Ho, Wo)
//   channels_last:  x (N, H, W, C), weight (KH, KW, C/groups, Cout), y (N, Ho, Wo, Cout)
#pragma once
#include <cstdint>

#include "core/activation.h"

namespace lamina {

// The geometry of one convolution; zero padding may be asymmetric.
struct ConvShape {
    int64_t N, C, H, W;  // input batch, channels, rows, columns
    int64_t Cout, KH, KW;
    int64_t stride_h, stride_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    int64_t dilation_h, dilation_w;
    int64_t groups;
    bool channels_last;

    int64_t Ho() const { return (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) / stride_h + 1; }
    int64_t Wo() const { return (W + pad_left + pad_right - dilation_w * (KW - 1) - 1) / stride_w + 1; }
};

// y = act(conv(x, w) + b). The caller has checked the geometry (Ho, Wo >= 1, divisibility).
// With scale and shift (an inference batch norm folded in), each output channel c becomes
// y = act(fma(conv(x, w) + b, scale[c], shift[c])) in the GEMM's write-back: bitwise the
// convolution without them, then that fma.
template <typename T>
void conv2d_forward(T* y,         // y is (N, Cout, Ho, Wo) or (N, Ho, Wo, Cout)
                    const T* x,   // x is (N, C, H, W) or (N, H, W, C)
                    const T* w,   // w is (Cout, C/groups, KH, KW) or (KH, KW, C/groups, Cout)
                    const T* b,   // b is (Cout,), or nullptr
                    const ConvShape& s, Activation act, double negative_slope,
                    const T* scale = nullptr,   // scale is (Cout,), or nullptr (then no shift)
                    const T* shift = nullptr);  // shift is (Cout,) when scale is set

// Gradients from dy, the gradient of the pre-activation output: dx overwritten, dW and db
// accumulated (overwritten when accumulate is false); each skipped when its pointer is null.
template <typename T>
void conv2d_backward(T* dx,         // dx is x's shape
                     T* dW,         // dW is w's shape
                     T* db,         // db is (Cout,)
                     const T* dy,   // dy is y's shape
                     const T* x,    // x as in conv2d_forward
                     const T* w,    // w as in conv2d_forward
                     const ConvShape& s, bool accumulate = true);

}  // namespace lamina
