#include "parallel/pp_transfer.h"

#include <glog/logging.h>

namespace steerlm {
namespace {

void check_has_next(const ProcessGroup& pp, const char* op) {
  CHECK_LT(pp.rank(), pp.size() - 1) << op << " on the last pipeline stage";
}

void check_has_previous(const ProcessGroup& pp, const char* op) {
  CHECK_GT(pp.rank(), 0) << op << " on the first pipeline stage";
}

}  // namespace

void send_forward(ProcessGroup& pp, const Tensor& activation) {
  check_has_next(pp, "send_forward");
  pp.send(activation, pp.rank() + 1, kPipelineActivationTag);
}

Tensor recv_forward(ProcessGroup& pp, const Shape& shape, DType dtype, Device device) {
  check_has_previous(pp, "recv_forward");
  Tensor activation = Tensor::empty(shape, dtype, device);  // (B, T, C) of a micro-batch, device
  pp.recv(activation, pp.rank() - 1, kPipelineActivationTag);
  return activation;
}

void send_backward(ProcessGroup& pp, const Tensor& input_grad) {
  check_has_previous(pp, "send_backward");
  pp.send(input_grad, pp.rank() - 1, kPipelineGradientTag);
}

Tensor recv_backward(ProcessGroup& pp, const Shape& shape, DType dtype, Device device) {
  check_has_next(pp, "recv_backward");
  Tensor output_grad = Tensor::empty(shape, dtype, device);  // (B, T, C) of a micro-batch, device
  pp.recv(output_grad, pp.rank() + 1, kPipelineGradientTag);
  return output_grad;
}

Tensor send_forward_recv_backward(ProcessGroup& pp, const Tensor& activation) {
  check_has_next(pp, "send_forward_recv_backward");
  Tensor output_grad = Tensor::empty(activation.shape(), activation.dtype(),
                                     activation.device());  // activation's shape and device
  pp.send_recv(activation, pp.rank() + 1, kPipelineActivationTag, output_grad, pp.rank() + 1,
               kPipelineGradientTag);
  return output_grad;
}

Tensor send_backward_recv_forward(ProcessGroup& pp, const Tensor& input_grad) {
  check_has_previous(pp, "send_backward_recv_forward");
  Tensor activation = Tensor::empty(input_grad.shape(), input_grad.dtype(),
                                    input_grad.device());  // input_grad's shape and device
  pp.send_recv(input_grad, pp.rank() - 1, kPipelineGradientTag, activation, pp.rank() - 1,
               kPipelineActivationTag);
  return activation;
}

}  // namespace steerlm
