// Recurrent layers (Elman RNN, LSTM, GRU) and embedding, forward and backward, on the GEMM engine.
//
// One layer, one direction, the whole sequence per call, time-major: x is (T, N, I), read as one
// (T*N, I) matrix; y is (T, N, H), y[t] = h_t. Weights in PyTorch's form, G gate blocks of H rows
// each in PyTorch's order (RNN: G = 1; LSTM: i, f, g, o; GRU: r, z, n):
//   W_ih (G*H, I), W_hh (G*H, H), b_ih and b_hh (G*H,), each bias nullable (none).
// Cell formulas (a_x = x_t W_ih^T + b_ih, a_h = h_{t-1} W_hh^T + b_hh, s = sigmoid):
//   RNN:  h_t = act(a_x + a_h), act tanh or relu
//   LSTM: i, f, g, o = s(a_i), s(a_f), tanh(a_g), s(a_o) of a = a_x + a_h;
//         c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
//   GRU:  r = s(a_x,r + a_h,r), z = s(a_x,z + a_h,z);  h_t = (1 - z) n + z h_{t-1} with
//         n = tanh(a_x,n + r a_h,n)                          (reset_after: PyTorch, Keras's default)
//         n = tanh(a_x,n + (r h_{t-1}) W_hn^T + b_hn)         (!reset_after: Keras's other variant)
//
// Forward: every step's input projection a_x in ONE GEMM (T*N rows) into the workspace, then per
// step one recurrent GEMM (h_{t-1} (N, H) @ W_hh^T, + b_hh) and the gate arithmetic right after it
// on that step's (N, G*H) rows (GRU without reset_after: a second, smaller GEMM on r h_{t-1}).
// Backward through time: per step the gate gradients, and dh_{t-1} by one GEMM on W_hh; after the
// loop dx, dW_ih and dW_hh as single GEMMs over all T*N rows and the bias gradients as column sums
// in row order. Threads split GEMM outputs and the rows of the gate arithmetic only, never a
// reduction: every result is bitwise the same for any thread count.
//
// Workspace (written by forward, read by backward; the caller owns it):
//   LSTM (T, N, 5H): i, f, g, o (activated) and c_t, per step and row
//   GRU  (T, N, 4H): r, z, n and the n gate's recurrent term: a_h,n (reset_after) or r h_{t-1}
//   RNN: none (backward reads y).
// h0, c0 nullable (zeros); dy, dh_n, dc_n nullable (zeros). Backward: dx (T, N, I) overwritten,
// skipped when null; dh0, dc0 (N, H) overwritten (dh0, dc0 null: not returned); dW_ih, dW_hh,
// db_ih, db_hh accumulated (+=), each skipped when null.
#pragma once
#include <cstdint>

namespace lamina {

struct RecurrentShape {
    int64_t T, N, I, H;  // time steps, batch, input size, hidden size (all >= 1)
};

enum class RnnActivation : int { tanh = 0, relu = 1 };

// ---- Elman RNN -------------------------------------------------------------------------------
template <typename T>
void rnn_forward(T* y,             // y is (T, N, H)
                 T* h_n,           // h_n is (N, H), or nullptr
                 const T* x,       // x is (T, N, I)
                 const T* h0,      // h0 is (N, H), or nullptr (zeros)
                 const T* W_ih,    // W_ih is (H, I)
                 const T* W_hh,    // W_hh is (H, H)
                 const T* b_ih,    // b_ih is (H,), or nullptr
                 const T* b_hh,    // b_hh is (H,), or nullptr
                 const RecurrentShape& s, RnnActivation act);

template <typename T>
void rnn_backward(T* dx,            // dx is (T, N, I), or nullptr
                  T* dh0,           // dh0 is (N, H), or nullptr
                  T* dW_ih,         // dW_ih is (H, I), or nullptr (+=)
                  T* dW_hh,         // dW_hh is (H, H), or nullptr (+=)
                  T* db_ih,         // db_ih is (H,), or nullptr (+=)
                  T* db_hh,         // db_hh is (H,), or nullptr (+=)
                  const T* dy,      // dy is (T, N, H), or nullptr (zeros)
                  const T* dh_n,    // dh_n is (N, H), or nullptr (zeros)
                  const T* x,       // x is (T, N, I)
                  const T* h0,      // h0 is (N, H), or nullptr
                  const T* W_ih,    // W_ih is (H, I)
                  const T* W_hh,    // W_hh is (H, H)
                  const T* y,       // y is (T, N, H), forward's output
                  const RecurrentShape& s, RnnActivation act);

// ---- LSTM ------------------------------------------------------------------------------------
template <typename T>
void lstm_forward(T* y,            // y is (T, N, H)
                  T* h_n,          // h_n is (N, H), or nullptr
                  T* c_n,          // c_n is (N, H), or nullptr
                  T* workspace,    // workspace is (T, N, 5H)
                  const T* x,      // x is (T, N, I)
                  const T* h0,     // h0 is (N, H), or nullptr (zeros)
                  const T* c0,     // c0 is (N, H), or nullptr (zeros)
                  const T* W_ih,   // W_ih is (4H, I)
                  const T* W_hh,   // W_hh is (4H, H)
                  const T* b_ih,   // b_ih is (4H,), or nullptr
                  const T* b_hh,   // b_hh is (4H,), or nullptr
                  const RecurrentShape& s);

template <typename T>
void lstm_backward(T* dx,              // dx is (T, N, I), or nullptr
                   T* dh0,             // dh0 is (N, H), or nullptr
                   T* dc0,             // dc0 is (N, H), or nullptr
                   T* dW_ih,           // dW_ih is (4H, I), or nullptr (+=)
                   T* dW_hh,           // dW_hh is (4H, H), or nullptr (+=)
                   T* db_ih,           // db_ih is (4H,), or nullptr (+=)
                   T* db_hh,           // db_hh is (4H,), or nullptr (+=)
                   const T* dy,        // dy is (T, N, H), or nullptr (zeros)
                   const T* dh_n,      // dh_n is (N, H), or nullptr (zeros)
                   const T* dc_n,      // dc_n is (N, H), or nullptr (zeros)
                   const T* x,         // x is (T, N, I)
                   const T* h0,        // h0 is (N, H), or nullptr
                   const T* c0,        // c0 is (N, H), or nullptr
                   const T* W_ih,      // W_ih is (4H, I)
                   const T* W_hh,      // W_hh is (4H, H)
                   const T* y,         // y is (T, N, H), forward's output
                   const T* workspace, // workspace is (T, N, 5H), forward's
                   const RecurrentShape& s);

// ---- GRU -------------------------------------------------------------------------------------
template <typename T>
void gru_forward(T* y,            // y is (T, N, H)
                 T* h_n,          // h_n is (N, H), or nullptr
                 T* workspace,    // workspace is (T, N, 4H)
                 const T* x,      // x is (T, N, I)
                 const T* h0,     // h0 is (N, H), or nullptr (zeros)
                 const T* W_ih,   // W_ih is (3H, I)
                 const T* W_hh,   // W_hh is (3H, H)
                 const T* b_ih,   // b_ih is (3H,), or nullptr
                 const T* b_hh,   // b_hh is (3H,), or nullptr
                 const RecurrentShape& s, bool reset_after);

template <typename T>
void gru_backward(T* dx,              // dx is (T, N, I), or nullptr
                  T* dh0,             // dh0 is (N, H), or nullptr
                  T* dW_ih,           // dW_ih is (3H, I), or nullptr (+=)
                  T* dW_hh,           // dW_hh is (3H, H), or nullptr (+=)
                  T* db_ih,           // db_ih is (3H,), or nullptr (+=)
                  T* db_hh,           // db_hh is (3H,), or nullptr (+=)
                  const T* dy,        // dy is (T, N, H), or nullptr (zeros)
                  const T* dh_n,      // dh_n is (N, H), or nullptr (zeros)
                  const T* x,         // x is (T, N, I)
                  const T* h0,        // h0 is (N, H), or nullptr
                  const T* W_ih,      // W_ih is (3H, I)
                  const T* W_hh,      // W_hh is (3H, H)
                  const T* y,         // y is (T, N, H), forward's output
                  const T* workspace, // workspace is (T, N, 4H), forward's
                  const RecurrentShape& s, bool reset_after);

// ---- embedding -------------------------------------------------------------------------------
// y[j] = W[indices[j]] for j < count. Every index must be in [0, num_embeddings) (checked by the
// caller).
template <typename T>
void embedding_forward(T* y,                 // y is (count, D)
                       const int64_t* indices,  // indices is (count,)
                       const T* W,           // W is (num_embeddings, D)
                       int64_t count, int64_t D);

// dW[indices[j]] += dy[j] for j = 0, 1, ..., count-1 in that order, skipping indices equal to
// padding_idx (-1: none). Threads split the D columns, so each row's sum has the same order for
// any thread count.
template <typename T>
void embedding_backward(T* dW,                   // dW is (num_embeddings, D) (+=)
                        const T* dy,             // dy is (count, D)
                        const int64_t* indices,  // indices is (count,)
                        int64_t count, int64_t D, int64_t padding_idx);

}  // namespace lamina
