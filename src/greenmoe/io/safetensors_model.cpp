// Hugging Face safetensors model folders: sharded reading and atomic writing (see
// safetensors_model.h).
#include "greenmoe/io/safetensors_model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <set>
#include <system_error>
#include <unordered_set>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A shard name from an index must stay inside the model folder.
bool plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\\') == std::string::npos;
}

void fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;  // best effort: the renames themselves already happened
    ::fsync(fd);
    ::close(fd);
}

// The safetensors header for `tensors`, laid out one after another from offset 0, padded with
// spaces to a multiple of 8 as the reference writer does.
std::string safetensors_header(const std::vector<const OutputTensor*>& tensors,
                               const std::map<std::string, std::string>& metadata,
                               const std::string& file) {
    // Built as text to keep the tensor order (a JSON object would sort the names).
    std::string text = "{";
    if (!metadata.empty()) {
        Json meta = Json::object();
        for (const auto& [k, v] : metadata) meta[k] = v;
        text += "\"__metadata__\":" + meta.dump();
    }
    uint64_t offset = 0;
    for (const OutputTensor* t : tensors) {
        Json entry;
        entry["dtype"] = dtype_name(t->dtype);
        entry["shape"] = t->shape;
        entry["data_offsets"] = {offset, offset + t->nbytes()};
        offset += t->nbytes();
        if (text.size() > 1) text += ',';
        try {
            text += Json(t->name).dump() + ':' + entry.dump();
        } catch (const Json::exception& e) {
            fail("cannot write {}: tensor name '{}' is not valid UTF-8: {}", file, t->name,
                 e.what());
        }
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

bool directory_is_empty_except(const fs::path& dir, const std::vector<std::string>& allowed) {
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) return false;
    }
    return true;
}

}  // namespace

uint64_t parse_byte_size(const std::string& text, const std::string& option) {
    size_t pos = 0;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) {
        ++pos;
    }
    const std::string number = text.substr(0, pos);
    std::string unit = lower(text.substr(pos));
    while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
    double value = 0.0;
    bool ok =
        !number.empty() && std::count(number.begin(), number.end(), '.') <= 1 && number != ".";
    if (ok) {
        try {
            value = std::stod(number);
        } catch (const std::exception&) {
            ok = false;
        }
    }
    static const std::map<std::string, double> kUnits = {{"", 1.0},
                                                         {"b", 1.0},
                                                         {"kb", 1e3},
                                                         {"mb", 1e6},
                                                         {"gb", 1e9},
                                                         {"tb", 1e12},
                                                         {"k", 1e3},
                                                         {"m", 1e6},
                                                         {"g", 1e9},
                                                         {"t", 1e12},
                                                         {"kib", 1024.0},
                                                         {"mib", 1048576.0},
                                                         {"gib", 1073741824.0},
                                                         {"tib", 1099511627776.0}};
    const auto it = kUnits.find(unit);
    if (!ok || it == kUnits.end()) {
        usage_fail("{}: '{}' is not a size (expected e.g. 5GB, 500MB, 1.5GiB or a byte count)",
                   option, text);
    }
    const double bytes = value * it->second;
    usage_check(bytes >= 1.0 && bytes < 1.8e19, "{}: size '{}' must be from 1 byte to 16 EiB",
                option, text);
    return static_cast<uint64_t>(std::llround(bytes));
}

std::string format_byte_size(uint64_t bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

SafetensorsModel SafetensorsModel::open(const fs::path& path) {
    SafetensorsModel m;
    if (fs::is_regular_file(path)) {
        m.dir_ = path.parent_path().empty() ? fs::path(".") : path.parent_path();
        m.source_ = path;
        m.shards_.push_back(SafetensorsFile::open(path));
    } else if (fs::is_directory(path)) {
        m.dir_ = path;
        const fs::path index = path / kIndexName;
        const fs::path single = path / kSingleName;
        if (fs::exists(index)) {
            m.source_ = index;
            m.sharded_ = true;
        } else if (fs::is_regular_file(single)) {
            m.source_ = single;
            m.shards_.push_back(SafetensorsFile::open(single));
        } else {
            const bool has_bin = fs::exists(path / "pytorch_model.bin") ||
                                 fs::exists(path / "pytorch_model.bin.index.json");
            fail("{}: no {} or {} in this folder{}", path.string(), kSingleName, kIndexName,
                 has_bin ? " (PyTorch .bin weights are not read: convert them to safetensors)"
                         : " (expected a Hugging Face model folder)");
        }
    } else {
        fail("{}: no such model file or folder", path.string());
    }

    if (m.sharded_) {
        const std::string where = m.source_.string();
        const Json index = Json::parse(read_file(m.source_), nullptr, false);
        check(!index.is_discarded(), "{}: not valid JSON", where);
        check(index.is_object(), "{}: expected a JSON object", where);
        const auto map_it = index.find("weight_map");
        check(map_it != index.end() && map_it->is_object(),
              "{}: expected a \"weight_map\" object of {{tensor name: shard file}}", where);
        check(!map_it->empty(), "{}: \"weight_map\" lists no tensors", where);
        if (const auto meta = index.find("metadata"); meta != index.end() && !meta->is_null()) {
            check(meta->is_object(), "{}: \"metadata\" is a JSON {}, expected an object", where,
                  meta->type_name());
            m.index_metadata_ = *meta;
        }
        // Shards in file-name order (HF's model-0000i-of-0000N sorts as written).
        std::map<std::string, std::vector<std::string>> listed;  // file → tensors
        for (const auto& [name, file] : map_it->items()) {
            check(file.is_string(), "{}: weight_map entry '{}' is a JSON {}, expected a file name",
                  where, name, file.type_name());
            const auto& f = file.get_ref<const std::string&>();
            check(plain_file_name(f),
                  "{}: weight_map entry '{}' names '{}', expected a file name inside the folder",
                  where, name, f);
            listed[f].push_back(name);
        }
        for (const auto& [file, names] : listed) {
            const fs::path shard_path = m.dir_ / file;
            check(fs::is_regular_file(shard_path),
                  "{}: shard '{}' (holding '{}' and {} more tensors) does not exist", where, file,
                  names.front(), names.size() - 1);
            m.shards_.push_back(SafetensorsFile::open(shard_path));
        }
        size_t s = 0;
        for (const auto& [file, names] : listed) {
            const SafetensorsFile& shard = m.shards_[s];
            for (const auto& name : names) {
                check(shard.find(name) != nullptr,
                      "{}: tensor '{}' is mapped to '{}' but that shard has no such tensor", where,
                      name, file);
            }
            ++s;
        }
        for (size_t i = 0; i < m.shards_.size(); ++i) {
            for (const auto& t : m.shards_[i].tensors()) {
                const auto [it, inserted] = m.shard_of_.emplace(t.name, i);
                if (!inserted) {
                    fail("{}: tensor '{}' is in two shards, '{}' and '{}'", where, t.name,
                         m.shards_[it->second].path().filename().string(),
                         m.shards_[i].path().filename().string());
                }
                const std::string file = m.shards_[i].path().filename().string();
                const auto listed_it = map_it->find(t.name);
                check(listed_it != map_it->end(),
                      "{}: tensor '{}' of shard '{}' is not listed in weight_map", where, t.name,
                      file);
                check(*listed_it == file,
                      "{}: tensor '{}' is in shard '{}' but weight_map says '{}'", where, t.name,
                      file, listed_it->get<std::string>());
            }
        }
    }
    if (!m.sharded_) {
        for (const auto& t : m.shards_[0].tensors()) m.shard_of_.emplace(t.name, 0);
    }
    for (const auto& shard : m.shards_) {
        for (const auto& t : shard.tensors()) m.names_.push_back(t.name);
    }
    return m;
}

const TensorInfo* SafetensorsModel::find(const std::string& name) const {
    const auto it = shard_of_.find(name);
    return it == shard_of_.end() ? nullptr : shards_[it->second].find(name);
}

const TensorInfo& SafetensorsModel::get(const std::string& name) const {
    const TensorInfo* t = find(name);
    if (t == nullptr) {
        fail("{}: no tensor named '{}' (the model has {} tensors)", source_.string(), name,
             names_.size());
    }
    return *t;
}

const SafetensorsFile& SafetensorsModel::file_of(const std::string& name) const {
    const auto it = shard_of_.find(name);
    if (it == shard_of_.end()) get(name);  // throws the message
    return shards_[it->second];
}

std::span<const std::byte> SafetensorsModel::bytes(const std::string& name) const {
    const SafetensorsFile& f = file_of(name);
    const TensorInfo& t = f.get(name);
    return {f.data(t), t.nbytes};
}

std::vector<float> SafetensorsModel::read_f32(const std::string& name) const {
    return file_of(name).read_f32(name);
}

void SafetensorsModel::read_f32_into(const std::string& name, float* out) const {
    file_of(name).read_f32_into(name, out, {});
}

void SafetensorsModel::release(const std::string& name) const {
    const auto b = bytes(name);
    if (b.empty()) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    // Only whole pages inside the tensor: a neighbour's shared edge page stays.
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(b.data()) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(b.data()) + b.size()) / page * page;
    if (end > begin) {
        // Advice only: a failure changes nothing but memory use.
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
}

int64_t SafetensorsModel::total_parameters() const {
    int64_t n = 0;
    for (const auto& shard : shards_) {
        for (const auto& t : shard.tensors()) n += t.numel();
    }
    return n;
}

uint64_t OutputTensor::nbytes() const {
    uint64_t n = 0;
    for (const auto& p : pieces) n += p.size();
    return n;
}

void check_model_output(const fs::path& out, const fs::path& input, bool overwrite,
                        const std::vector<std::string>& replaceable) {
    check(!out.empty(), "no output folder given");
    if (!input.empty() && fs::exists(input)) {
        const fs::path in = fs::weakly_canonical(input);
        const fs::path o = fs::weakly_canonical(out);
        // `in` inside (or equal to) `o`: replacing `o` would delete the input.
        auto [oi, ii] = std::mismatch(o.begin(), o.end(), in.begin(), in.end());
        check(oi != o.end(),
              "output {} would replace the input model {}: choose another output folder",
              out.string(), input.string());
    }
    if (!fs::exists(out)) return;
    check(fs::is_directory(out), "output {} exists and is not a folder", out.string());
    if (overwrite || directory_is_empty_except(out, replaceable)) return;
    fail("output folder {} exists and is not empty: pass --overwrite to replace it", out.string());
}

ModelFolderWritten write_model_folder(const fs::path& out, const std::vector<OutputTensor>& tensors,
                                      const ModelFolderWriteOptions& options) {
    check_model_output(out, options.input, options.overwrite, options.replaceable_entries);
    check(options.max_shard_bytes > 0, "the maximum shard size must be positive");
    {
        std::unordered_set<std::string> names;
        for (const auto& t : tensors) {
            check(names.insert(t.name).second, "cannot write {}: tensor '{}' appears twice",
                  out.string(), t.name);
            int64_t numel = 1;
            for (const int64_t d : t.shape) numel *= d;
            check(static_cast<uint64_t>(numel) * dtype_size(t.dtype) == t.nbytes(),
                  "cannot write {}: tensor '{}' has {} bytes of data for its shape", out.string(),
                  t.name, t.nbytes());
        }
    }

    // Shard plan, as transformers' save_pretrained: fill a shard until the next tensor would
    // pass the limit; a tensor over the limit alone makes a shard.
    std::vector<std::vector<const OutputTensor*>> plan(1);
    uint64_t shard_bytes = 0, total_bytes = 0;
    for (const auto& t : tensors) {
        const uint64_t n = t.nbytes();
        if (!options.single_file && !plan.back().empty() &&
            shard_bytes + n > options.max_shard_bytes) {
            plan.emplace_back();
            shard_bytes = 0;
        }
        plan.back().push_back(&t);
        shard_bytes += n;
        total_bytes += n;
    }
    const size_t n_shards = plan.size();
    ModelFolderWritten written;
    written.tensor_bytes = total_bytes;
    for (size_t s = 0; s < n_shards; ++s) {
        written.files.push_back(
            n_shards == 1 ? std::string(kSingleName)
                          : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, n_shards));
    }

    const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    fs::create_directories(parent);
    const std::string base = out.filename().string();
    const fs::path staging = parent / fmt::format(".{}.staging-{}", base, ::getpid());
    const fs::path old = parent / fmt::format(".{}.old-{}", base, ::getpid());
    std::error_code ec;
    fs::remove_all(staging, ec);  // a leftover of a crashed run with the same pid
    fs::create_directories(staging);
    try {
        std::optional<ProgressBar> bar;
        if (options.show_progress) bar.emplace("writing", total_bytes, "B");
        uint64_t done = 0;
        for (size_t s = 0; s < n_shards; ++s) {
            const fs::path file = staging / written.files[s];
            const std::string header =
                safetensors_header(plan[s], options.shard_metadata, file.string());
            const uint64_t header_len = header.size();
            AtomicFileWriter writer(file);
            writer.write(&header_len, sizeof header_len);
            writer.write(header.data(), header.size());
            for (const OutputTensor* t : plan[s]) {
                for (const auto& piece : t->pieces) {
                    if (!piece.empty()) writer.write(piece.data(), piece.size());
                }
                done += t->nbytes();
                if (bar) bar->update(done, written.files[s]);
            }
            writer.commit();
        }
        if (bar) bar->finish();
        if (n_shards > 1) {
            Json index;
            index["metadata"] =
                options.index_metadata.is_object() ? options.index_metadata : Json::object();
            index["metadata"]["total_size"] = total_bytes;
            Json map = Json::object();
            for (size_t s = 0; s < n_shards; ++s) {
                for (const OutputTensor* t : plan[s]) map[t->name] = written.files[s];
            }
            index["weight_map"] = std::move(map);
            write_file_atomic(staging / kIndexName, index.dump(2) + "\n");
        }
        if (options.config) {
            write_file_atomic(staging / "config.json", options.config->dump(2) + "\n");
        }
        if (options.add_files) options.add_files(staging);

        // Checked again: the folder may have changed while the shards were written.
        check_model_output(out, options.input, options.overwrite, options.replaceable_entries);
        if (fs::exists(out)) {
            fs::remove_all(old, ec);
            fs::rename(out, old);
            try {
                fs::rename(staging, out);
            } catch (...) {
                fs::rename(old, out, ec);
                throw;
            }
            fs::remove_all(old, ec);
        } else {
            fs::rename(staging, out);
        }
        fsync_dir(parent);
    } catch (const fs::filesystem_error& e) {
        fs::remove_all(staging, ec);
        fail("cannot write model folder {}: {}", out.string(), e.what());
    } catch (...) {
        fs::remove_all(staging, ec);
        throw;
    }
    return written;
}

bool is_weight_file_name(const std::string& name) {
    for (const char* ext : {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                            ".gguf", ".onnx", ".npz"}) {
        if (name.ends_with(ext)) return true;
    }
    return name.ends_with(".safetensors.index.json") || name.ends_with(".bin.index.json");
}

}  // namespace greenmoe
