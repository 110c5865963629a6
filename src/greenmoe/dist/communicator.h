// The ranks of a data-parallel job: MPI when the program was started by an MPI launcher
// (mpirun, srun) and built with MPI, otherwise a single rank whose collectives do nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace greenmoe {

class Communicator {
  public:
    // One rank, no MPI.
    Communicator();
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    // Joins the MPI job when an MPI launcher started this process (its environment says
    // so), else one rank. Throws Error when launched with several ranks by a greenmoe
    // built without MPI. timeout_s bounds every wait for the other ranks (0 = no bound).
    static std::unique_ptr<Communicator> from_environment(double timeout_s);
    // Whether this greenmoe was built with MPI.
    static bool mpi_built();
    // The job size an MPI launcher announced in the environment (0 when none started us).
    static int launcher_ranks();

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    // The lowest rank on this host: the one that counts host-wide energy meters, which
    // every rank on the host would otherwise read and add again.
    bool host_leader() const { return host_leader_; }
    const std::string& host_name() const { return host_name_; }
    double timeout_seconds() const { return timeout_s_; }

    // Sums over ranks, in place; every rank gets the result. Each waits at most the
    // timeout, then ends the whole job with a message (a rank died or hangs).
    void all_reduce_sum(std::span<float> data, const char* what);
    void all_reduce_sum(std::span<double> data, const char* what);
    void all_reduce_sum(std::span<int64_t> data, const char* what);
    // Root's bytes to every rank.
    void broadcast(std::span<std::byte> data, const char* what);
    void broadcast(std::string& text, const char* what);
    // Every rank's `mine` (the same length on each), in rank order, to every rank.
    std::vector<double> all_gather(std::span<const double> mine, const char* what);
    // A buffer split in pieces, rank r owning [offsets[r], offsets[r+1]) (ZeRO stage 1).
    // all_gather_pieces: `data` is the whole buffer on every rank, each rank's own piece
    // up to date; afterwards every piece is, everywhere. gather_pieces: each rank's piece
    // (`mine`) to the root's whole buffer `all` (null elsewhere). scatter_pieces: back.
    void all_gather_pieces(float* data, const std::vector<size_t>& offsets, const char* what);
    void gather_pieces(const float* mine, float* all, const std::vector<size_t>& offsets,
                       const char* what);
    void scatter_pieces(const float* all, float* mine, const std::vector<size_t>& offsets,
                        const char* what);
    // Waits for every rank; timeout_s overrides the communicator's (0 = no bound), for
    // waits on slow one-off work such as the root preparing a dataset.
    void barrier(const char* what, double timeout_s);
    void barrier(const char* what) { barrier(what, timeout_s_); }

    // A sum started now and finished by finish_pending(), so that it overlaps with
    // computation (the backward pass of the layers below). data must stay valid until then.
    void start_all_reduce_sum(std::span<float> data);
    // Lets pending sums move on; MPI progresses them only inside its calls.
    void progress();
    void finish_pending(const char* what);

    // Seconds spent waiting on other ranks in collectives since the last call.
    double take_wait_seconds();
    // Ends every rank of the job with exit code `code` (MPI_Abort), or exits this one.
    [[noreturn]] void abort(int code);

    // The even split of [0, n) into size() contiguous pieces (offsets, size()+1 entries).
    std::vector<size_t> split(size_t n) const;

  private:
    struct Mpi;  // MPI state; only communicator.cpp includes mpi.h
    std::unique_ptr<Mpi> mpi_;
    int rank_ = 0;
    int size_ = 1;
    bool host_leader_ = true;
    std::string host_name_;
    double timeout_s_ = 0.0;
    double wait_seconds_ = 0.0;
};

}  // namespace greenmoe
