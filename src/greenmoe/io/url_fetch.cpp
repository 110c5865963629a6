// curl as a child process (see url_fetch.h).
#include "greenmoe/io/url_fetch.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

extern char** environ;

namespace greenmoe {

bool fetch_url(const std::string& url, const std::filesystem::path& out, int max_seconds) {
    const std::string seconds = std::to_string(max_seconds);
    const std::string out_path = out.string();
    // --proto limits curl to the schemes greenmoe means to use, whatever a redirect says.
    std::vector<std::string> args = {"curl",       "-fsSL", "--proto", "=https,http,file",
                                     "--max-time", seconds, "-o",      out_path,
                                     "--",         url};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // curl's own messages would interleave with the progress line; the caller reports failure.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    const int error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) return false;  // no curl on PATH
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace greenmoe
