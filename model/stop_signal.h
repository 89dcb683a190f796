// Graceful stop on SIGTERM or SIGUSR1 (what Slurm sends before a time limit): the training loop
// finishes the current step, saves a checkpoint and exits cleanly, so a requeued job resumes
// where it stopped.
#pragma once

namespace steerlm {

// Installs the handlers (idempotent). The handler only sets a flag.
void install_stop_signal_handlers();

// True once SIGTERM or SIGUSR1 has arrived. The caller agrees across ranks before acting, since
// the signal may reach ranks at different steps.
bool stop_requested();

// The signal number received, or 0.
int stop_signal_number();

// Forgets a received signal (a process that trains again after stopping, such as a test).
void clear_stop_request();

}  // namespace steerlm
