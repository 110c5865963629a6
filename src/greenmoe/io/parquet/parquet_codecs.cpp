// Parquet codecs through Debian's libraries: libsnappy, zlib, libzstd.
#include "greenmoe/io/parquet/parquet_codecs.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "greenmoe/core/error.h"

namespace greenmoe::parquet {

namespace {

void gunzip(const uint8_t* src, size_t size, std::vector<uint8_t>& out, const std::string& what) {
    z_stream s;
    std::memset(&s, 0, sizeof s);
    // 15 + 32: full window, gzip or zlib header detected (writers differ).
    check(inflateInit2(&s, 15 + 32) == Z_OK, "{}: cannot start zlib", what);
    s.next_in = const_cast<Bytef*>(src);
    s.avail_in = static_cast<uInt>(size);
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    int rc = Z_OK;
    // Some writers concatenate gzip members; read them all.
    while (true) {
        rc = inflate(&s, Z_FINISH);
        if (rc == Z_STREAM_END && s.avail_in > 0 && s.avail_out > 0) {
            inflateReset(&s);
            continue;
        }
        break;
    }
    const size_t produced = out.size() - s.avail_out;
    const bool extra = rc == Z_BUF_ERROR && s.avail_out == 0 && s.avail_in > 0;
    inflateEnd(&s);
    check(!extra, "{}: GZIP data decompresses to more than the page's {} bytes", what, out.size());
    check(rc == Z_STREAM_END, "{}: GZIP data is corrupt or truncated", what);
    check(produced == out.size(), "{}: GZIP data decompresses to {} bytes, the page says {}", what,
          produced, out.size());
}

}  // namespace

void decompress(Codec codec, const uint8_t* src, size_t size, size_t expected,
                std::vector<uint8_t>& out, const std::string& what) {
    check(size <= UINT32_MAX && expected <= UINT32_MAX, "{}: page larger than 4 GiB", what);
    out.resize(expected);
    switch (codec) {
        case Codec::kUncompressed:
            check(size == expected, "{}: uncompressed page of {} bytes, the header says {}", what,
                  size, expected);
            if (size > 0) std::memcpy(out.data(), src, size);
            return;
        case Codec::kSnappy: {
            size_t n = 0;
            check(snappy_uncompressed_length(reinterpret_cast<const char*>(src), size, &n) ==
                      SNAPPY_OK,
                  "{}: SNAPPY data is corrupt", what);
            check(n == expected, "{}: SNAPPY data decompresses to {} bytes, the page says {}", what,
                  n, expected);
            n = expected;
            check(snappy_uncompress(reinterpret_cast<const char*>(src), size,
                                    reinterpret_cast<char*>(out.data()), &n) == SNAPPY_OK &&
                      n == expected,
                  "{}: SNAPPY data is corrupt", what);
            return;
        }
        case Codec::kGzip:
            gunzip(src, size, out, what);
            return;
        case Codec::kZstd: {
            // Streaming, so that frames without a content size and concatenated frames read.
            ZSTD_DCtx* ctx = ZSTD_createDCtx();
            check(ctx != nullptr, "{}: cannot start zstd", what);
            ZSTD_inBuffer in{src, size, 0};
            ZSTD_outBuffer o{out.data(), out.size(), 0};
            // Once the page is full, a one-byte probe catches data that decompresses longer.
            uint8_t spare = 0;
            ZSTD_outBuffer probe{&spare, 1, 0};
            size_t rc = 1;
            bool error = false;
            while (true) {
                const size_t in_before = in.pos, out_before = o.pos;
                rc = ZSTD_decompressStream(ctx, o.pos < o.size ? &o : &probe, &in);
                if (ZSTD_isError(rc) || probe.pos > 0) {
                    error = true;
                    break;
                }
                if (rc == 0 && in.pos == in.size) break;                // every frame ended
                if (in.pos == in_before && o.pos == out_before) break;  // no progress: truncated
            }
            ZSTD_freeDCtx(ctx);
            check(!error, "{}: ZSTD data is corrupt or larger than the page's {} bytes", what,
                  expected);
            check(rc == 0, "{}: ZSTD data is truncated", what);
            check(o.pos == expected, "{}: ZSTD data decompresses to {} bytes, the page says {}",
                  what, o.pos, expected);
            return;
        }
        case Codec::kLzo:
        case Codec::kBrotli:
        case Codec::kLz4:
        case Codec::kLz4Raw:
            break;
    }
    fail(
        "{}: compression codec {} is not supported (greenmoe reads UNCOMPRESSED, SNAPPY, GZIP "
        "and ZSTD)",
        what, name_of(codec));
}

}  // namespace greenmoe::parquet
