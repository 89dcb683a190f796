#include "model/stop_signal.h"

#include <csignal>

namespace steerlm {
namespace {

// Signal handlers can only touch lock-free atomics; this is process-wide by nature.
volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal_number) {
  g_stop_signal = signal_number;
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

bool stop_requested() {
  return g_stop_signal != 0;
}

int stop_signal_number() {
  return g_stop_signal;
}

void clear_stop_request() {
  g_stop_signal = 0;
}

}  // namespace steerlm
