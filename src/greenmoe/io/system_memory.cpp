// Physical memory and the fit check (see system_memory.h).
#include "greenmoe/io/system_memory.h"

#include <unistd.h>

#include "greenmoe/core/error.h"

namespace greenmoe {

uint64_t physical_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void check_fits_in_memory(double bytes, const std::string& what, const std::string& hint) {
    const double have = static_cast<double>(physical_memory_bytes());
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    check(have <= 0 || bytes <= have, "{} needs {:.3g} GiB, this machine has {:.3g} GiB ({})", what,
          bytes / kGiB, have / kGiB, hint);
}

}  // namespace greenmoe
