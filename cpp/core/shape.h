// A small N-D shape: up to kMaxRank int64 dims, held by value. The plan describes each step's
// per-sample input and output with it (the batch dimension is kept apart, as a count of samples).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

namespace lamina {

struct Shape {
    static constexpr int kMaxRank = 6;
    int64_t dims[kMaxRank] = {};
    int rank = 0;

    Shape() = default;
    Shape(std::initializer_list<int64_t> list) {
        for (int64_t d : list) push_back(d);
    }

    int64_t operator[](int i) const { return dims[i]; }
    int64_t& operator[](int i) { return dims[i]; }
    int64_t back() const { return dims[rank - 1]; }
    // The caller checks rank < kMaxRank first (shapes come from Python and are validated there).
    void push_back(int64_t d) { dims[rank++] = d; }

    // Product of dims [from, to): the number of elements of that part of the shape.
    int64_t size(int from = 0, int to = -1) const {
        if (to < 0) to = rank;
        int64_t n = 1;
        for (int i = from; i < to; ++i) n *= dims[i];
        return n;
    }

    bool operator==(const Shape& other) const {
        if (rank != other.rank) return false;
        for (int i = 0; i < rank; ++i)
            if (dims[i] != other.dims[i]) return false;
        return true;
    }
    bool operator!=(const Shape& other) const { return !(*this == other); }

    // "(3, 4)", "(8,)", "()", as Python prints a tuple.
    std::string str() const {
        std::string s = "(";
        for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
        return s + (rank == 1 ? ",)" : ")");
    }
};

}  // namespace lamina
