// Communicator over MPI's non-blocking collectives, waited on with a bound (see
// communicator.h).
#include "greenmoe/dist/communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <unistd.h>

#ifdef GREENMOE_HAVE_MPI
#include <mpi.h>
#endif

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

using Clock = std::chrono::steady_clock;

// What the common launchers put in each rank's environment: the job's size.
int launcher_world_size() {
    for (const char* name :
         {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"}) {
        if (const char* v = std::getenv(name)) return std::atoi(v);
    }
    // PMIx sets the rank, not always the size; it means a launcher all the same.
    return std::getenv("PMIX_RANK") != nullptr ? 1 : 0;
}

std::string this_host() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

// MPI counts are ints: larger buffers go as several operations of at most this many.
constexpr size_t kMaxCount = size_t(1) << 30;

}  // namespace

#ifdef GREENMOE_HAVE_MPI

struct Communicator::Mpi {
    std::vector<MPI_Request> pending;
    bool finalize = false;
};

namespace {

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
    return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
    return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<int64_t>() {
    return MPI_INT64_T;
}

}  // namespace

#else

struct Communicator::Mpi {};

#endif

Communicator::Communicator() : host_name_(this_host()) {}

Communicator::~Communicator() {
#ifdef GREENMOE_HAVE_MPI
    if (mpi_ && mpi_->finalize) MPI_Finalize();
#endif
}

bool Communicator::mpi_built() {
#ifdef GREENMOE_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int Communicator::launcher_ranks() {
    return launcher_world_size();
}

std::unique_ptr<Communicator> Communicator::from_environment(double timeout_s) {
    check(timeout_s >= 0, "--dist-timeout must be ≥ 0 seconds, got {}", timeout_s);
    auto comm = std::make_unique<Communicator>();
    comm->timeout_s_ = timeout_s;
    const int launched = launcher_world_size();
    if (launched == 0) return comm;
#ifdef GREENMOE_HAVE_MPI
    comm->mpi_ = std::make_unique<Mpi>();
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        // Only the main thread calls MPI; OpenMP threads never do.
        int provided = 0;
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
        comm->mpi_->finalize = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &comm->size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    int local_rank = 0;
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
    comm->host_leader_ = local_rank == 0;
#else
    check(launched <= 1,
          "this greenmoe was built without MPI, so the {} processes the launcher started would "
          "each train alone: install libopenmpi-dev and rebuild (scripts/setup.sh does both)",
          launched);
#endif
    return comm;
}

std::vector<size_t> Communicator::split(size_t n) const {
    std::vector<size_t> offsets(static_cast<size_t>(size_) + 1);
    for (int r = 0; r <= size_; ++r) {
        offsets[size_t(r)] = n * static_cast<size_t>(r) / static_cast<size_t>(size_);
    }
    return offsets;
}

double Communicator::take_wait_seconds() {
    const double s = wait_seconds_;
    wait_seconds_ = 0.0;
    return s;
}

#ifdef GREENMOE_HAVE_MPI

namespace {

// Waits for every request, testing rather than blocking so that the wait has a bound: a
// rank that died or hangs ends the whole job with a message instead of stalling it. Short
// waits spin; longer ones sleep between tests to leave the core to the ranks computing.
double wait_all(std::vector<MPI_Request>& requests, int rank, int size, double timeout_s,
                const char* what) {
    const auto t0 = Clock::now();
    int done = 0;
    for (long tries = 0;; ++tries) {
        MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
        if (done) break;
        const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
        if (timeout_s > 0 && waited > timeout_s) {
            std::fprintf(stderr,
                         "greenmoe: rank %d of %d: no answer from the other ranks for %.0f s "
                         "during %s: a rank has died or hangs; ending the job (--dist-timeout "
                         "sets this wait)\n",
                         rank, size, waited, what);
            std::fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        if (tries > 2000) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    requests.clear();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <typename T>
void start_sum(std::span<T> data, std::vector<MPI_Request>& requests) {
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
        const size_t n = std::min(kMaxCount, data.size() - at);
        requests.emplace_back();
        MPI_Iallreduce(MPI_IN_PLACE, data.data() + at, static_cast<int>(n), mpi_type<T>(), MPI_SUM,
                       MPI_COMM_WORLD, &requests.back());
    }
}

}  // namespace

#define GREENMOE_SUM(T)                                                      \
    void Communicator::all_reduce_sum(std::span<T> data, const char* what) { \
        if (size_ == 1) return;                                              \
        std::vector<MPI_Request> requests;                                   \
        start_sum(data, requests);                                           \
        wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what); \
    }
GREENMOE_SUM(float)
GREENMOE_SUM(double)
GREENMOE_SUM(int64_t)
#undef GREENMOE_SUM

void Communicator::broadcast(std::span<std::byte> data, const char* what) {
    if (size_ == 1) return;
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
        const size_t n = std::min(kMaxCount, data.size() - at);
        requests.emplace_back();
        MPI_Ibcast(data.data() + at, static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD,
                   &requests.back());
    }
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what);
}

void Communicator::broadcast(std::string& text, const char* what) {
    if (size_ == 1) return;
    int64_t n = static_cast<int64_t>(text.size());
    broadcast(std::as_writable_bytes(std::span<int64_t>(&n, 1)), what);
    text.resize(static_cast<size_t>(n));
    broadcast(std::as_writable_bytes(std::span<char>(text.data(), text.size())), what);
}

std::vector<double> Communicator::all_gather(std::span<const double> mine, const char* what) {
    std::vector<double> all(mine.size() * static_cast<size_t>(size_));
    if (size_ == 1) {
        std::copy(mine.begin(), mine.end(), all.begin());
        return all;
    }
    check(mine.size() < kMaxCount, "all_gather: {} values is too many", mine.size());
    std::vector<MPI_Request> requests(1);
    MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                   static_cast<int>(mine.size()), MPI_DOUBLE, MPI_COMM_WORLD, &requests[0]);
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what);
    return all;
}

namespace {

void piece_counts(const std::vector<size_t>& offsets, int size, std::vector<int>& counts,
                  std::vector<int>& displs) {
    check(offsets.size() == static_cast<size_t>(size) + 1 && offsets.back() < size_t(INT_MAX),
          "gathering {} floats in {} pieces: MPI counts are ints, so at most {} floats",
          offsets.back(), offsets.size() - 1, INT_MAX);
    for (int r = 0; r < size; ++r) {
        counts.push_back(static_cast<int>(offsets[size_t(r) + 1] - offsets[size_t(r)]));
        displs.push_back(static_cast<int>(offsets[size_t(r)]));
    }
}

}  // namespace

void Communicator::all_gather_pieces(float* data, const std::vector<size_t>& offsets,
                                     const char* what) {
    if (size_ == 1) return;
    std::vector<int> counts, displs;
    piece_counts(offsets, size_, counts, displs);
    std::vector<MPI_Request> requests(1);
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data, counts.data(), displs.data(), MPI_FLOAT,
                    MPI_COMM_WORLD, &requests[0]);
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what);
}

void Communicator::gather_pieces(const float* mine, float* all, const std::vector<size_t>& offsets,
                                 const char* what) {
    std::vector<int> counts, displs;
    piece_counts(offsets, size_, counts, displs);
    if (size_ == 1) {
        std::copy(mine, mine + counts[0], all);
        return;
    }
    std::vector<MPI_Request> requests(1);
    MPI_Igatherv(mine, counts[size_t(rank_)], MPI_FLOAT, all, counts.data(), displs.data(),
                 MPI_FLOAT, 0, MPI_COMM_WORLD, &requests[0]);
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what);
}

void Communicator::scatter_pieces(const float* all, float* mine, const std::vector<size_t>& offsets,
                                  const char* what) {
    std::vector<int> counts, displs;
    piece_counts(offsets, size_, counts, displs);
    if (size_ == 1) {
        std::copy(all, all + counts[0], mine);
        return;
    }
    std::vector<MPI_Request> requests(1);
    MPI_Iscatterv(all, counts.data(), displs.data(), MPI_FLOAT, mine, counts[size_t(rank_)],
                  MPI_FLOAT, 0, MPI_COMM_WORLD, &requests[0]);
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s_, what);
}

void Communicator::barrier(const char* what, double timeout_s) {
    if (size_ == 1) return;
    std::vector<MPI_Request> requests(1);
    MPI_Ibarrier(MPI_COMM_WORLD, &requests[0]);
    wait_seconds_ += wait_all(requests, rank_, size_, timeout_s, what);
}

void Communicator::start_all_reduce_sum(std::span<float> data) {
    if (size_ == 1) return;
    start_sum(data, mpi_->pending);
}

void Communicator::progress() {
    if (size_ == 1 || mpi_->pending.empty()) return;
    int done = 0;
    MPI_Testall(static_cast<int>(mpi_->pending.size()), mpi_->pending.data(), &done,
                MPI_STATUSES_IGNORE);
    if (done) mpi_->pending.clear();
}

void Communicator::finish_pending(const char* what) {
    if (size_ == 1 || mpi_->pending.empty()) return;
    wait_seconds_ += wait_all(mpi_->pending, rank_, size_, timeout_s_, what);
}

void Communicator::abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
}

#else  // one rank: every collective is the identity

void Communicator::all_reduce_sum(std::span<float>, const char*) {}
void Communicator::all_reduce_sum(std::span<double>, const char*) {}
void Communicator::all_reduce_sum(std::span<int64_t>, const char*) {}
void Communicator::broadcast(std::span<std::byte>, const char*) {}
void Communicator::broadcast(std::string&, const char*) {}
std::vector<double> Communicator::all_gather(std::span<const double> mine, const char*) {
    return {mine.begin(), mine.end()};
}
void Communicator::all_gather_pieces(float*, const std::vector<size_t>&, const char*) {}
void Communicator::gather_pieces(const float* mine, float* all, const std::vector<size_t>& offsets,
                                 const char*) {
    std::copy(mine, mine + offsets.back(), all);
}
void Communicator::scatter_pieces(const float* all, float* mine, const std::vector<size_t>& offsets,
                                  const char*) {
    std::copy(all, all + offsets.back(), mine);
}
void Communicator::barrier(const char*, double) {}
void Communicator::start_all_reduce_sum(std::span<float>) {}
void Communicator::progress() {}
void Communicator::finish_pending(const char*) {}
void Communicator::abort(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::exit(code);
}

#endif

}  // namespace greenmoe
