// VmHWM read and reset through /proc (see peak_memory.h).
#include "greenmoe/bench/peak_memory.h"

#include <fstream>
#include <sstream>
#include <string>

#include "greenmoe/energy/process_usage.h"

namespace greenmoe {

double peak_rss_now() {
    std::ifstream in("/proc/self/status");
    std::stringstream text;
    text << in.rdbuf();
    return peak_rss_from_proc_status(text.str()).value_or(0.0);
}

bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    if (!out) return false;
    out << "5";
    out.flush();
    return bool(out);
}

}  // namespace greenmoe
