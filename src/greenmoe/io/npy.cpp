// NumPy .npy reading and writing (see npy.h).
#include "greenmoe/io/npy.h"

#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/mapped_file.h"

namespace greenmoe {

static_assert(std::endian::native == std::endian::little,
              ".npy data is read and written in the host byte order, assumed little-endian");

namespace {

constexpr std::string_view kNpyMagic = "\x93NUMPY";

// Product of the dimensions, or nullopt when it overflows int64 or a dimension is negative.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (const int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
    }
    return n;
}

// The header is a Python dict literal, e.g. {'descr': '<u2', 'fortran_order': False,
// 'shape': (1024,), }. This parses exactly the subset np.save writes.
class HeaderParser {
  public:
    HeaderParser(std::string_view text, const std::filesystem::path& path)
        : text_(text), path_(path) {}

    NpyHeader parse() {
        NpyHeader header;
        bool has_descr = false, has_order = false, has_shape = false;
        skip_space();
        expect('{');
        while (true) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = parse_string();
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                check(!has_descr, "{}: .npy header has 'descr' twice", path_.string());
                check(peek() != '[',
                      "{}: .npy structured dtypes (a list as 'descr') are not supported",
                      path_.string());
                header.descr = parse_string();
                has_descr = true;
            } else if (key == "fortran_order") {
                check(!has_order, "{}: .npy header has 'fortran_order' twice", path_.string());
                header.fortran_order = parse_bool();
                has_order = true;
            } else if (key == "shape") {
                check(!has_shape, "{}: .npy header has 'shape' twice", path_.string());
                header.shape = parse_shape();
                has_shape = true;
            } else {
                fail(
                    "{}: .npy header has an unexpected key '{}' (expected only 'descr', "
                    "'fortran_order' and 'shape')",
                    path_.string(), key);
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            check(peek() == '}', "{}: .npy header: expected ',' or '}}' at offset {} of '{}'",
                  path_.string(), pos_, text_);
        }
        ++pos_;
        skip_space();
        check(pos_ == text_.size(), "{}: .npy header has trailing text after the dict: '{}'",
              path_.string(), text_);
        check(has_descr && has_order && has_shape,
              "{}: .npy header lacks {} (expected 'descr', 'fortran_order' and 'shape'): '{}'",
              path_.string(),
              !has_descr   ? "'descr'"
              : !has_order ? "'fortran_order'"
                           : "'shape'",
              text_);
        return header;
    }

  private:
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                       text_[pos_] == '\n' || text_[pos_] == '\r')) {
            ++pos_;
        }
    }

    void expect(char c) {
        check(peek() == c,
              "{}: .npy header is not a valid dict: expected '{}' at offset {} of '{}'",
              path_.string(), c, pos_, text_);
        ++pos_;
    }

    std::string parse_string() {
        const char quote = peek();
        check(quote == '\'' || quote == '"',
              "{}: .npy header: expected a quoted string at offset {} of '{}'", path_.string(),
              pos_, text_);
        ++pos_;
        const size_t end = text_.find(quote, pos_);
        check(end != std::string_view::npos, "{}: .npy header has an unterminated string: '{}'",
              path_.string(), text_);
        std::string value(text_.substr(pos_, end - pos_));
        check(value.find('\\') == std::string::npos,
              "{}: .npy header: escapes in strings are not supported: '{}'", path_.string(), text_);
        pos_ = end + 1;
        return value;
    }

    bool parse_bool() {
        if (text_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        if (text_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        fail("{}: .npy header: 'fortran_order' must be True or False: '{}'", path_.string(), text_);
    }

    std::vector<int64_t> parse_shape() {
        std::vector<int64_t> shape;
        expect('(');
        skip_space();
        if (peek() == ')') {
            ++pos_;
            return shape;
        }
        while (true) {
            skip_space();
            check(peek() >= '0' && peek() <= '9',
                  "{}: .npy header: 'shape' must be a tuple of non-negative integers: '{}'",
                  path_.string(), text_);
            int64_t value = 0;
            while (peek() >= '0' && peek() <= '9') {
                const int digit = peek() - '0';
                check(value <= (std::numeric_limits<int64_t>::max() - digit) / 10,
                      "{}: .npy header: a dimension in 'shape' is too large: '{}'", path_.string(),
                      text_);
                value = value * 10 + digit;
                ++pos_;
            }
            if (peek() == 'L') ++pos_;  // Python 2 longs, as very old NumPy wrote them
            shape.push_back(value);
            skip_space();
            if (peek() == ')') {
                ++pos_;
                break;
            }
            expect(',');
            skip_space();
            if (peek() == ')') {
                ++pos_;
                break;
            }
        }
        return shape;
    }

    std::string_view text_;
    const std::filesystem::path& path_;
    size_t pos_ = 0;
};

uint32_t read_le(const std::byte* p, int bytes) {
    uint32_t value = 0;
    for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<uint32_t>(p[i]);
    return value;
}

}  // namespace

int64_t NpyHeader::numel() const {
    return checked_numel(shape).value_or(-1);
}

int64_t NpyArray::numel() const {
    return checked_numel(shape).value_or(-1);
}

NpyHeader parse_npy_header(const std::byte* bytes, size_t size, const std::filesystem::path& path) {
    check(size >= 10, "{}: too short to be a .npy file ({} bytes; the header alone needs 10+)",
          path.string(), size);
    check(std::memcmp(bytes, kNpyMagic.data(), kNpyMagic.size()) == 0,
          "{}: not a .npy file (missing the \\x93NUMPY magic)", path.string());
    const auto major = static_cast<unsigned>(bytes[6]);
    const auto minor = static_cast<unsigned>(bytes[7]);
    check(major >= 1 && major <= 3 && minor == 0,
          "{}: unsupported .npy format version {}.{} (expected 1.0, 2.0 or 3.0)", path.string(),
          major, minor);
    size_t prefix = 10, header_len = read_le(bytes + 8, 2);
    if (major >= 2) {
        check(size >= 12, "{}: truncated .npy file ({} bytes)", path.string(), size);
        prefix = 12;
        header_len = read_le(bytes + 8, 4);
    }
    check(header_len <= size - prefix,
          "{}: truncated .npy file: the header claims {} bytes but only {} follow", path.string(),
          header_len, size - prefix);
    const std::string_view text(reinterpret_cast<const char*>(bytes + prefix), header_len);
    NpyHeader header = HeaderParser(text, path).parse();
    header.data_offset = prefix + header_len;
    check(checked_numel(header.shape).has_value(),
          "{}: .npy shape {} has more elements than fit in 64 bits", path.string(),
          shape_text(header.shape));
    return header;
}

size_t npy_item_size(const std::string& descr, const std::filesystem::path& path) {
    const bool well_formed =
        descr.size() >= 3 && std::string_view("<>|=").find(descr[0]) != std::string_view::npos;
    const char kind = well_formed ? descr[1] : '\0';
    check(well_formed && std::string_view("fiucb").find(kind) != std::string_view::npos &&
              descr.find_first_not_of("0123456789", 2) == std::string::npos && descr.size() <= 5,
          "{}: unsupported .npy dtype '{}' (expected a plain number type such as '<f4' or '<u2')",
          path.string(), descr);
    const size_t item_size = std::stoul(descr.substr(2));
    check(item_size >= 1 && item_size <= 16, "{}: unsupported .npy dtype '{}'", path.string(),
          descr);
    check(descr[0] != '>' || item_size == 1,
          "{}: big-endian .npy dtype '{}' is not supported (expected little-endian '<')",
          path.string(), descr);
    return item_size;
}

NpyArray read_npy(const std::filesystem::path& path) {
    const MappedFile file = MappedFile::open(path);
    const NpyHeader header = parse_npy_header(file.data(), file.size(), path);
    const size_t item_size = npy_item_size(header.descr, path);
    check(!header.fortran_order || header.shape.size() <= 1,
          "{}: Fortran-order .npy arrays are not supported (shape {}); save a C-order array",
          path.string(), shape_text(header.shape));
    const auto numel = static_cast<size_t>(header.numel());
    const size_t actual = file.size() - header.data_offset;
    check(numel <= std::numeric_limits<size_t>::max() / item_size && actual == numel * item_size,
          "{}: .npy data is {} bytes but shape {} of '{}' needs {} bytes{}", path.string(), actual,
          shape_text(header.shape), header.descr, numel * item_size,
          actual < numel * item_size ? " (truncated file)" : "");
    NpyArray array;
    array.descr = header.descr;
    array.shape = header.shape;
    array.data.assign(file.data() + header.data_offset, file.data() + file.size());
    return array;
}

std::vector<float> NpyArray::to_f32() const {
    const auto n = static_cast<size_t>(numel());
    std::vector<float> out(n);
    if (descr == "<f4") {
        check(data.size() == n * 4, ".npy array: {} bytes for {} float32 values", data.size(), n);
        if (n > 0) std::memcpy(out.data(), data.data(), n * 4);
    } else if (descr == "<f8") {
        check(data.size() == n * 8, ".npy array: {} bytes for {} float64 values", data.size(), n);
        for (size_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, data.data() + i * 8, 8);
            out[i] = static_cast<float>(v);
        }
    } else if (descr == "<f2") {
        check(data.size() == n * 2, ".npy array: {} bytes for {} float16 values", data.size(), n);
        for (size_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, data.data() + i * 2, 2);
            out[i] = f16_to_f32(v);
        }
    } else {
        fail(".npy array of dtype '{}' cannot be read as float32 (expected '<f4', '<f8' or '<f2')",
             descr);
    }
    return out;
}

void write_npy_raw(const std::filesystem::path& path, const std::string& descr, const void* data,
                   const std::vector<int64_t>& shape, bool fortran_order) {
    const size_t item_size = npy_item_size(descr, path);
    const auto numel = checked_numel(shape);
    check(numel.has_value(), "cannot write {}: invalid .npy shape {}", path.string(),
          shape_text(shape));
    const size_t nbytes = static_cast<size_t>(*numel) * item_size;
    check(data != nullptr || nbytes == 0, "cannot write {}: no data for shape {}", path.string(),
          shape_text(shape));

    std::string dict = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran_order ? "True" : "False") + ", 'shape': (";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) dict += ", ";
        dict += std::to_string(shape[i]);
    }
    dict += shape.size() == 1 ? ",), }" : "), }";

    // Pad with spaces and end with '\n' so that the data starts 64-byte aligned, as NumPy does.
    constexpr size_t kAlign = 64;
    size_t prefix = 10;
    size_t total = (prefix + dict.size() + 1 + kAlign - 1) / kAlign * kAlign;
    int major = 1;
    if (total - prefix > 0xffff) {
        major = 2;
        prefix = 12;
        total = (prefix + dict.size() + 1 + kAlign - 1) / kAlign * kAlign;
    }
    const size_t header_len = total - prefix;
    std::string head(kNpyMagic);
    head += static_cast<char>(major);
    head += '\0';
    for (size_t i = 0; i < prefix - 8; ++i)
        head += static_cast<char>((header_len >> (8 * i)) & 0xff);
    head += dict;
    head.append(total - head.size() - 1, ' ');
    head += '\n';

    AtomicFileWriter writer(path);
    writer.write(head.data(), head.size());
    if (nbytes > 0) writer.write(data, nbytes);
    writer.commit();
}

void write_npy(const std::filesystem::path& path, const float* data,
               const std::vector<int64_t>& shape) {
    write_npy_raw(path, "<f4", data, shape);
}

void write_npy(const std::filesystem::path& path, const double* data,
               const std::vector<int64_t>& shape) {
    write_npy_raw(path, "<f8", data, shape);
}

void write_npy(const std::filesystem::path& path, const uint16_t* data,
               const std::vector<int64_t>& shape) {
    write_npy_raw(path, "<u2", data, shape);
}

}  // namespace greenmoe
