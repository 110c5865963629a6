// safetensors reading (mmap, strict header validation) and atomic writing (see safetensors.h).
#include "greenmoe/io/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is used in place");

namespace {

// Not nlohmann::ordered_json: its linear key lookup makes parsing quadratic in the number of
// tensors. The file order is recorded separately while parsing.
using Json = nlohmann::json;

// The reference implementation's limit: a larger header is taken as a corrupt file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeEntry {
    DType dtype;
    const char* name;
    size_t size;
};
constexpr std::array<DTypeEntry, 10> kDTypes = {{{DType::F64, "F64", 8},
                                                 {DType::F32, "F32", 4},
                                                 {DType::F16, "F16", 2},
                                                 {DType::BF16, "BF16", 2},
                                                 {DType::I64, "I64", 8},
                                                 {DType::I32, "I32", 4},
                                                 {DType::I16, "I16", 2},
                                                 {DType::I8, "I8", 1},
                                                 {DType::U8, "U8", 1},
                                                 {DType::BOOL, "BOOL", 1}}};

const DTypeEntry& dtype_entry(DType dtype) {
    for (const auto& entry : kDTypes) {
        if (entry.dtype == dtype) return entry;
    }
    fail("invalid DType value {}", static_cast<int>(dtype));
}

std::optional<DType> parse_dtype(std::string_view name) {
    for (const auto& entry : kDTypes) {
        if (name == entry.name) return entry.dtype;
    }
    return std::nullopt;
}

std::string dtype_list() {
    std::string list;
    for (const auto& entry : kDTypes) {
        if (!list.empty()) list += ", ";
        list += entry.name;
    }
    return list;
}

// Byte count of a tensor, or nullopt when it overflows 64 bits (or a dimension is negative).
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, size_t item_size) {
    uint64_t n = item_size;
    for (const int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
    }
    return n;
}

std::string_view json_type(const Json& value) {
    return value.type_name();
}

// SAX handler that records the keys of the outermost object in order, and the first
// duplicate among them.
struct TopLevelKeys {
    std::vector<std::string> names;
    std::unordered_set<std::string> seen;
    std::string duplicate;
    std::string error;
    int depth = 0;

    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(Json::number_integer_t) { return true; }
    bool number_unsigned(Json::number_unsigned_t) { return true; }
    bool number_float(Json::number_float_t, const Json::string_t&) { return true; }
    bool string(Json::string_t&) { return true; }
    bool binary(Json::binary_t&) { return true; }
    bool start_object(size_t) {
        ++depth;
        return true;
    }
    bool end_object() {
        --depth;
        return true;
    }
    bool start_array(size_t) {
        ++depth;
        return true;
    }
    bool end_array() {
        --depth;
        return true;
    }
    bool key(Json::string_t& name) {
        if (depth != 1) return true;
        if (seen.insert(name).second) {
            names.push_back(name);
        } else if (duplicate.empty()) {
            duplicate = name;
        }
        return true;
    }
    bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
        error = e.what();
        return false;
    }
};

TensorInfo parse_tensor_entry(const std::string& file, const std::string& name, const Json& entry,
                              uint64_t data_size) {
    check(entry.is_object(), "{}: tensor '{}': header entry is a JSON {}, expected an object", file,
          name, json_type(entry));
    for (const auto& [key, value] : entry.items()) {
        check(key == "dtype" || key == "shape" || key == "data_offsets",
              "{}: tensor '{}': unexpected key '{}' (expected dtype, shape and data_offsets)", file,
              name, key);
    }
    TensorInfo info;
    info.name = name;

    const auto dtype_it = entry.find("dtype");
    check(dtype_it != entry.end(), "{}: tensor '{}': missing 'dtype'", file, name);
    check(dtype_it->is_string(), "{}: tensor '{}': 'dtype' is a JSON {}, expected a string", file,
          name, json_type(*dtype_it));
    const auto& dtype_name_value = dtype_it->get_ref<const std::string&>();
    const auto dtype = parse_dtype(dtype_name_value);
    if (!dtype) {
        fail("{}: tensor '{}': unknown dtype '{}' (expected one of {})", file, name,
             dtype_name_value, dtype_list());
    }
    info.dtype = *dtype;

    const auto shape_it = entry.find("shape");
    check(shape_it != entry.end(), "{}: tensor '{}': missing 'shape'", file, name);
    check(shape_it->is_array(), "{}: tensor '{}': 'shape' is a JSON {}, expected an array", file,
          name, json_type(*shape_it));
    for (const auto& dim : *shape_it) {
        // if/fail rather than check(): the message arguments are costly to build.
        if (!dim.is_number_integer()) {
            fail("{}: tensor '{}': 'shape' holds a JSON {} ({}), expected non-negative integers",
                 file, name, json_type(dim), dim.dump());
        }
        if (!dim.is_number_unsigned()) {
            fail("{}: tensor '{}': negative dimension {} in shape {}", file, name,
                 dim.get<int64_t>(), shape_it->dump());
        }
        const auto d = dim.get<uint64_t>();
        check(d <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
              "{}: tensor '{}': dimension {} in shape is too large", file, name, d);
        info.shape.push_back(static_cast<int64_t>(d));
    }

    const auto offsets_it = entry.find("data_offsets");
    check(offsets_it != entry.end(), "{}: tensor '{}': missing 'data_offsets'", file, name);
    const Json& offsets = *offsets_it;
    if (!(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
          offsets[1].is_number_unsigned())) {
        fail(
            "{}: tensor '{}': 'data_offsets' is {}, expected [begin, end] of non-negative "
            "integers",
            file, name, offsets.dump());
    }
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    check(begin <= end, "{}: tensor '{}': data_offsets [{}, {}] end before they begin", file, name,
          begin, end);
    check(end <= data_size,
          "{}: tensor '{}': data_offsets [{}, {}] lie outside the data section of {} bytes "
          "(truncated file?)",
          file, name, begin, end, data_size);

    const size_t item_size = dtype_size(info.dtype);
    const auto nbytes = checked_nbytes(info.shape, item_size);
    if (!nbytes || *nbytes != end - begin) {
        fail(
            "{}: tensor '{}': shape {} of {} ({} bytes each) needs {} bytes but data_offsets "
            "[{}, {}] span {} bytes",
            file, name, shape_text(info.shape), dtype_name(info.dtype), item_size,
            nbytes ? std::to_string(*nbytes) : std::string("more than 2^64"), begin, end,
            end - begin);
    }
    info.offset = static_cast<size_t>(begin);
    info.nbytes = static_cast<size_t>(end - begin);
    return info;
}

}  // namespace

const char* dtype_name(DType dtype) {
    return dtype_entry(dtype).name;
}

size_t dtype_size(DType dtype) {
    return dtype_entry(dtype).size;
}

DType dtype_from_name(const std::string& name) {
    const auto dtype = parse_dtype(name);
    if (!dtype) fail("unknown dtype '{}' (expected one of {})", name, dtype_list());
    return *dtype;
}

int64_t TensorInfo::numel() const {
    // nbytes bounds the product, but a zero dimension after huge ones ([2^32, 2^32, 0]) would
    // overflow a running product: zero first.
    if (nbytes == 0) return 0;
    int64_t n = 1;
    for (const int64_t d : shape) n *= d;
    return n;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
    SafetensorsFile st;
    st.path_ = path;
    st.file_ = MappedFile::open(path);
    const std::string file = path.string();
    const size_t size = st.file_.size();
    check(size >= 8,
          "{}: too short to be a safetensors file ({} bytes; the header length alone needs 8)",
          file, size);
    uint64_t header_len = 0;
    std::memcpy(&header_len, st.file_.data(), 8);
    check(header_len <= size - 8,
          "{}: header length {} bytes is larger than the rest of the file ({} bytes); not a "
          "safetensors file or truncated",
          file, header_len, size - 8);
    check(header_len <= kMaxHeaderBytes,
          "{}: header length {} bytes is larger than the {} bytes allowed; not a safetensors file",
          file, header_len, kMaxHeaderBytes);

    const auto* header_begin = reinterpret_cast<const char*>(st.file_.data() + 8);
    // Two passes over the header text, both linear: a SAX pass records the top-level keys in
    // file order (the parsed object is sorted by name) and finds duplicates (which the DOM
    // would silently merge); then the DOM parse. nlohmann's callback parser would do both in
    // one pass but is quadratic in the number of entries.
    const std::string_view text(header_begin, header_len);
    TopLevelKeys keys;
    if (!Json::sax_parse(text.begin(), text.end(), &keys)) {
        fail("{}: header is not valid JSON: {}", file, keys.error);
    }
    const std::vector<std::string>& names = keys.names;
    Json header;
    try {
        header = Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
        fail("{}: header is not valid JSON: {}", file, e.what());
    }
    check(header.is_object(), "{}: header is a JSON {}, expected an object", file,
          json_type(header));
    check(keys.duplicate.empty(), "{}: header names '{}' twice", file, keys.duplicate);

    const uint64_t data_size = size - 8 - header_len;
    st.data_ = st.file_.data() + 8 + header_len;
    st.tensors_.reserve(header.size());
    for (const auto& name : names) {
        const Json& entry = header.at(name);
        if (name == "__metadata__") {
            if (entry.is_null()) continue;
            check(entry.is_object(), "{}: '__metadata__' is a JSON {}, expected an object", file,
                  json_type(entry));
            for (const auto& [key, value] : entry.items()) {
                check(value.is_string(),
                      "{}: '__metadata__' value of '{}' is a JSON {}, expected a string", file, key,
                      json_type(value));
                st.metadata_.emplace(key, value.get<std::string>());
            }
            continue;
        }
        st.index_.emplace(name, st.tensors_.size());
        st.tensors_.push_back(parse_tensor_entry(file, name, entry, data_size));
    }

    // Overlap check: sort the non-empty tensors by start; each must begin after the
    // previous one ends.
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(st.tensors_.size());
    for (const auto& t : st.tensors_) {
        if (t.nbytes > 0) by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo& prev = *by_offset[i - 1];
        const TensorInfo& cur = *by_offset[i];
        check(cur.offset >= prev.offset + prev.nbytes,
              "{}: tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap", file, prev.name,
              prev.offset, prev.offset + prev.nbytes, cur.name, cur.offset,
              cur.offset + cur.nbytes);
    }
    return st;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::get(const std::string& name) const {
    const TensorInfo* t = find(name);
    if (t == nullptr) {
        fail("{}: no tensor named '{}' (the file has {} tensors)", path_.string(), name,
             tensors_.size());
    }
    return *t;
}

std::vector<float> SafetensorsFile::read_f32(const std::string& name,
                                             const std::vector<int64_t>& expected_shape) const {
    const TensorInfo& t = get(name);
    std::vector<float> out(static_cast<size_t>(t.numel()));
    read_f32_into(name, out.data(), expected_shape);
    return out;
}

void SafetensorsFile::read_f32_into(const std::string& name, float* out,
                                    const std::vector<int64_t>& expected_shape) const {
    const TensorInfo& t = get(name);
    if (!expected_shape.empty() && t.shape != expected_shape) {
        fail("{}: tensor '{}' has shape {}, expected {}", path_.string(), name, shape_text(t.shape),
             shape_text(expected_shape));
    }
    const auto n = static_cast<size_t>(t.numel());
    // The data section need not be aligned (the header length is not always a multiple of
    // 8), so elements are copied out with memcpy rather than read through a cast pointer.
    const std::byte* src = data(t);
    switch (t.dtype) {
        case DType::F32:
            if (n > 0) std::memcpy(out, src, n * sizeof(float));
            break;
        case DType::F64:
            for (size_t i = 0; i < n; ++i) {
                double v;
                std::memcpy(&v, src + i * sizeof v, sizeof v);
                out[i] = static_cast<float>(v);
            }
            break;
        case DType::F16:
            for (size_t i = 0; i < n; ++i) {
                uint16_t v;
                std::memcpy(&v, src + i * sizeof v, sizeof v);
                out[i] = f16_to_f32(v);
            }
            break;
        case DType::BF16:
            for (size_t i = 0; i < n; ++i) {
                uint16_t v;
                std::memcpy(&v, src + i * sizeof v, sizeof v);
                out[i] = bf16_to_f32(v);
            }
            break;
        default:
            fail("{}: tensor '{}' has dtype {}, expected a float type (F32, F16, BF16 or F64)",
                 path_.string(), name, dtype_name(t.dtype));
    }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    const std::string file = path.string();
    // Built by hand rather than through a JSON object, to keep the given tensor order
    // without ordered_json's quadratic inserts. Keys go in the reference's order.
    std::string text = "{";
    const auto quoted = [&](const std::string& s) {
        try {
            return Json(s).dump();
        } catch (const Json::exception& e) {
            fail("cannot write {}: '{}' is not valid UTF-8: {}", file, s, e.what());
        }
    };
    if (!metadata.empty()) {
        text += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [key, value] : metadata) {
            if (!first) text += ',';
            first = false;
            text += quoted(key) + ':' + quoted(value);
        }
        text += '}';
    }
    std::unordered_set<std::string> names;
    std::vector<size_t> sizes;
    sizes.reserve(tensors.size());
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        check(t.name != "__metadata__", "cannot write {}: '__metadata__' is not a tensor name",
              file);
        check(names.insert(t.name).second, "cannot write {}: tensor '{}' appears twice", file,
              t.name);
        const auto nbytes = checked_nbytes(t.shape, dtype_size(t.dtype));
        if (!nbytes) {
            fail("cannot write {}: tensor '{}' has an invalid shape {}", file, t.name,
                 shape_text(t.shape));
        }
        check(t.data != nullptr || *nbytes == 0, "cannot write {}: tensor '{}' has no data", file,
              t.name);
        if (text.size() > 1) text += ',';
        text +=
            fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[", quoted(t.name), dtype_name(t.dtype));
        for (size_t i = 0; i < t.shape.size(); ++i) {
            if (i > 0) text += ',';
            text += std::to_string(t.shape[i]);
        }
        text += fmt::format("],\"data_offsets\":[{},{}]}}", offset, offset + *nbytes);
        offset += *nbytes;
        sizes.push_back(static_cast<size_t>(*nbytes));
    }
    text += '}';
    // Padded with spaces to a multiple of 8 so that the data section stays 8-byte aligned.
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t header_len = text.size();

    AtomicFileWriter writer(path);
    writer.write(&header_len, sizeof header_len);
    writer.write(text.data(), text.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        if (sizes[i] > 0) writer.write(tensors[i].data, sizes[i]);
    }
    writer.commit();
}

}  // namespace greenmoe
