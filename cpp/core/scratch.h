// Grow-only scratch memory, one set per calling thread, so that the steady state of a training loop
// allocates nothing and concurrent Python threads (or OpenMP threads) never share scratch space.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace lamina {

// A grow-only, 64-byte aligned buffer (packing panels). Declare it thread_local.
struct AlignedBuffer {
    void* data = nullptr;
    std::size_t bytes = 0;
    AlignedBuffer() = default;
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { std::free(data); }
    void* get(std::size_t need) {
        if (need > bytes) {
            std::free(data);
            bytes = (need + 63) / 64 * 64;
            data = std::aligned_alloc(64, bytes);
            if (!data) {
                bytes = 0;
                throw std::bad_alloc();
            }
        }
        return data;
    }
};

// The slots of thread_scratch, one per user, so that two users on one thread never share one.
constexpr int kLossTermsScratchSlot = 0;     // kernels/losses.cpp: mean_of_terms' terms
constexpr int kLossRowsScratchSlot = 1;      // kernels/losses.cpp: a loss's per-row values
constexpr int kActivationScratchSlot = 2;    // kernels/activations.cpp: log_softmax's exponentials

// n values of T in this thread's scratch slot `slot` (0..3), valid until the thread asks for the
// same slot again.
template <typename T>
T* thread_scratch(int64_t n, int slot) {
    thread_local std::vector<T> buffers[4];
    std::vector<T>& buffer = buffers[slot];
    if (int64_t(buffer.size()) < n) buffer.resize(n);
    return buffer.data();
}

}  // namespace lamina
