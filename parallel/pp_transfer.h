// Point-to-point transfers between neighbouring pipeline stages (DESIGN §5, PP).
//
// Activations flow forward (stage s -> s+1) and their gradients backward (s+1 -> s), over the
// grid's pp group. Each direction has its own tag, so the two streams never match each other;
// within a direction, micro-batches arrive in the order they were sent (MPI's non-overtaking
// rule; NCCL matches in issue order). Receivers allocate on `device` with the shape and dtype
// both stages derive from the config: (B, T, C) of a micro-batch for a Llama activation.
//
// The combined calls serve 1F1B's steady phase, where a stage sends one way while receiving
// from the other: both transfers are in flight together, so neighbours never deadlock on each
// other's send. Every transfer is under the watchdog deadline (parallel/watchdog.h).
#pragma once

#include "parallel/process_group.h"

namespace steerlm {

enum PipelineTag : int { kPipelineActivationTag = 1, kPipelineGradientTag = 2 };

// Activation of stage s to stage s+1. Not on the last stage.
void send_forward(ProcessGroup& pp, const Tensor& activation);
// Activation from stage s-1. Not on the first stage.
Tensor recv_forward(ProcessGroup& pp, const Shape& shape, DType dtype, Device device);
// Gradient of stage s's input to stage s-1. Not on the first stage.
void send_backward(ProcessGroup& pp, const Tensor& input_grad);
// Gradient of this stage's output from stage s+1. Not on the last stage.
Tensor recv_backward(ProcessGroup& pp, const Shape& shape, DType dtype, Device device);

// Sends the activation forward while receiving the output gradient (of `activation`'s shape,
// dtype and device) from stage s+1. Not on the last stage.
Tensor send_forward_recv_backward(ProcessGroup& pp, const Tensor& activation);
// Sends the input gradient backward while receiving the next activation (of `input_grad`'s
// shape, dtype and device) from stage s-1. Not on the first stage.
Tensor send_backward_recv_forward(ProcessGroup& pp, const Tensor& input_grad);

}  // namespace steerlm
