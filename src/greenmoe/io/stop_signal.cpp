// Deferred SIGINT / SIGTERM (see stop_signal.h).
#include "greenmoe/io/stop_signal.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace greenmoe {

namespace {

// Signal handlers can only reach globals; this is the one flag they set.
volatile std::sig_atomic_t g_received = 0;
struct sigaction g_previous_int, g_previous_term;

void on_signal(int sig) {
    if (g_received != 0) _exit(128 + sig);  // the second signal: no more waiting
    g_received = sig;
    static const char kNote[] =
        "\ngreenmoe: stopping after the current step (saving a checkpoint); signal again to "
        "stop at once\n";
    const ssize_t ignored = write(STDERR_FILENO, kNote, sizeof kNote - 1);
    (void)ignored;
}

}  // namespace

StopSignals::StopSignals() {
    g_received = 0;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // reads and writes in progress carry on
    sigaction(SIGINT, &sa, &g_previous_int);
    sigaction(SIGTERM, &sa, &g_previous_term);
}

StopSignals::~StopSignals() {
    sigaction(SIGINT, &g_previous_int, nullptr);
    sigaction(SIGTERM, &g_previous_term, nullptr);
}

int StopSignals::signal() const {
    return g_received;
}

const char* signal_name(int signal) {
    if (signal == SIGINT) return "SIGINT";
    if (signal == SIGTERM) return "SIGTERM";
    return "a signal";
}

}  // namespace greenmoe
