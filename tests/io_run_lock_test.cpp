// The run folder lock: one holder at a time, the refusal names the holder's pid, and a
// killed holder leaves nothing held.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "greenmoe/io/run_lock.h"
#include "test_support.h"

namespace greenmoe {
namespace {

TEST(RunLock, SecondHolderIsRefusedWithTheHoldersPid) {
    testing::TempDir tmp;
    std::optional<RunLock> first(std::in_place, tmp.path());
    const std::string msg = testing::error_message([&] { RunLock second(tmp.path()); });
    EXPECT_NE(msg.find(tmp.path().string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("in use by another greenmoe process (pid " + std::to_string(getpid()) + ")"),
              std::string::npos)
        << msg;
    first.reset();
    RunLock again(tmp.path());  // released with its holder
    EXPECT_TRUE(std::filesystem::exists(tmp / RunLock::kFileName));
}

TEST(RunLock, AKilledHolderLeavesNothingHeld) {
    testing::TempDir tmp;
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The child takes the lock, says so, and waits to be killed.
        RunLock lock(tmp.path());
        const char c = 'x';
        if (write(ready[1], &c, 1) != 1) std::_Exit(1);
        for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    const std::string msg = testing::error_message([&] { RunLock lock(tmp.path()); });
    EXPECT_NE(msg.find("(pid " + std::to_string(child) + ")"), std::string::npos) << msg;
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    // The lock file is still there, but nothing holds it.
    ASSERT_TRUE(std::filesystem::exists(tmp / RunLock::kFileName));
    RunLock lock(tmp.path());
}

}  // namespace
}  // namespace greenmoe
