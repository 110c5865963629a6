// Decoding parquet.thrift's FileMetaData and PageHeader; unknown fields are skipped, as
// Thrift's evolution rules require.
#include "greenmoe/io/parquet/parquet_metadata.h"

#include "greenmoe/io/parquet/thrift_compact.h"

namespace greenmoe::parquet {

namespace {

// Reads a struct: `on_field(field)` returns true when it consumed the field's value.
template <typename OnField>
void read_struct(ThriftReader& in, OnField&& on_field) {
    in.begin_struct();
    while (true) {
        const ThriftField f = in.read_field();
        if (f.type == ThriftType::kStop) break;
        if (!on_field(f)) in.skip(f.type);
    }
    in.end_struct();
}

template <typename OnElement>
void read_list(ThriftReader& in, const ThriftField& f, ThriftType element, OnElement&& on_element) {
    if (f.type != ThriftType::kList) in.fail_here("expected a list");
    const ThriftList list = in.read_list_header();
    if (list.element != element) in.fail_here("a list of the wrong element type");
    for (uint32_t i = 0; i < list.size; ++i) on_element();
}

bool is(const ThriftField& f, int16_t id, ThriftType type) {
    return f.id == id && f.type == type;
}

// A struct-typed LogicalType union: only which member is set matters here.
void read_logical_type(ThriftReader& in, SchemaElement& e) {
    read_struct(in, [&](const ThriftField& f) {
        if (f.type != ThriftType::kStruct) return false;
        if (f.id == 3) e.logical_list = true;  // LogicalType.LIST
        if (f.id == 2) e.logical_map = true;   // LogicalType.MAP
        return false;
    });
}

SchemaElement read_schema_element(ThriftReader& in) {
    SchemaElement e;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 1, ThriftType::kI32)) {
            const int32_t t = in.read_i32();
            if (t < 0 || t > 7) in.fail_here("an unknown physical type");
            e.type = static_cast<PhysicalType>(t);
        } else if (is(f, 2, ThriftType::kI32)) {
            e.type_length = in.read_i32();
        } else if (is(f, 3, ThriftType::kI32)) {
            const int32_t r = in.read_i32();
            if (r < 0 || r > 2) in.fail_here("an unknown repetition type");
            e.repetition = static_cast<Repetition>(r);
        } else if (is(f, 4, ThriftType::kBinary)) {
            e.name = std::string(in.read_binary());
        } else if (is(f, 5, ThriftType::kI32)) {
            e.num_children = in.read_i32();
        } else if (is(f, 6, ThriftType::kI32)) {
            e.converted_type = in.read_i32();
        } else if (is(f, 10, ThriftType::kStruct)) {
            read_logical_type(in, e);
        } else {
            return false;
        }
        return true;
    });
    return e;
}

ColumnMetaData read_column_metadata(ThriftReader& in) {
    ColumnMetaData m;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 1, ThriftType::kI32)) {
            const int32_t t = in.read_i32();
            if (t < 0 || t > 7) in.fail_here("an unknown physical type");
            m.type = static_cast<PhysicalType>(t);
        } else if (is(f, 3, ThriftType::kList)) {
            read_list(in, f, ThriftType::kBinary,
                      [&] { m.path_in_schema.emplace_back(in.read_binary()); });
        } else if (is(f, 4, ThriftType::kI32)) {
            m.codec = static_cast<Codec>(in.read_i32());
        } else if (is(f, 5, ThriftType::kI64)) {
            m.num_values = in.read_i64();
        } else if (is(f, 7, ThriftType::kI64)) {
            m.total_compressed_size = in.read_i64();
        } else if (is(f, 9, ThriftType::kI64)) {
            m.data_page_offset = in.read_i64();
        } else if (is(f, 11, ThriftType::kI64)) {
            m.dictionary_page_offset = in.read_i64();
        } else {
            return false;
        }
        return true;
    });
    return m;
}

ColumnChunk read_column_chunk(ThriftReader& in) {
    ColumnChunk c;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 1, ThriftType::kBinary)) {
            c.file_path = std::string(in.read_binary());
        } else if (is(f, 3, ThriftType::kStruct)) {
            c.meta = read_column_metadata(in);
            c.has_meta = true;
        } else if (f.id == 8 || f.id == 9) {  // crypto_metadata, encrypted_column_metadata
            c.encrypted = true;
            return false;
        } else {
            return false;
        }
        return true;
    });
    return c;
}

RowGroup read_row_group(ThriftReader& in) {
    RowGroup g;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 1, ThriftType::kList)) {
            read_list(in, f, ThriftType::kStruct,
                      [&] { g.columns.push_back(read_column_chunk(in)); });
        } else if (is(f, 3, ThriftType::kI64)) {
            g.num_rows = in.read_i64();
        } else {
            return false;
        }
        return true;
    });
    return g;
}

Encoding read_encoding(ThriftReader& in) {
    return static_cast<Encoding>(in.read_i32());
}

}  // namespace

const char* name_of(PhysicalType type) {
    switch (type) {
        case PhysicalType::kBoolean:
            return "BOOLEAN";
        case PhysicalType::kInt32:
            return "INT32";
        case PhysicalType::kInt64:
            return "INT64";
        case PhysicalType::kInt96:
            return "INT96";
        case PhysicalType::kFloat:
            return "FLOAT";
        case PhysicalType::kDouble:
            return "DOUBLE";
        case PhysicalType::kByteArray:
            return "BYTE_ARRAY";
        case PhysicalType::kFixedLenByteArray:
            return "FIXED_LEN_BYTE_ARRAY";
    }
    return "an unknown physical type";
}

const char* name_of(Encoding encoding) {
    switch (encoding) {
        case Encoding::kPlain:
            return "PLAIN";
        case Encoding::kPlainDictionary:
            return "PLAIN_DICTIONARY";
        case Encoding::kRle:
            return "RLE";
        case Encoding::kBitPacked:
            return "BIT_PACKED";
        case Encoding::kDeltaBinaryPacked:
            return "DELTA_BINARY_PACKED";
        case Encoding::kDeltaLengthByteArray:
            return "DELTA_LENGTH_BYTE_ARRAY";
        case Encoding::kDeltaByteArray:
            return "DELTA_BYTE_ARRAY";
        case Encoding::kRleDictionary:
            return "RLE_DICTIONARY";
        case Encoding::kByteStreamSplit:
            return "BYTE_STREAM_SPLIT";
    }
    return "an unknown encoding";
}

const char* name_of(Codec codec) {
    switch (codec) {
        case Codec::kUncompressed:
            return "UNCOMPRESSED";
        case Codec::kSnappy:
            return "SNAPPY";
        case Codec::kGzip:
            return "GZIP";
        case Codec::kLzo:
            return "LZO";
        case Codec::kBrotli:
            return "BROTLI";
        case Codec::kLz4:
            return "LZ4";
        case Codec::kZstd:
            return "ZSTD";
        case Codec::kLz4Raw:
            return "LZ4_RAW";
    }
    return "an unknown codec";
}

FileMetaData parse_file_metadata(const uint8_t* data, size_t size, const std::string& what) {
    ThriftReader in(data, size, what + ": file metadata");
    FileMetaData m;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 2, ThriftType::kList)) {
            read_list(in, f, ThriftType::kStruct,
                      [&] { m.schema.push_back(read_schema_element(in)); });
        } else if (is(f, 3, ThriftType::kI64)) {
            m.num_rows = in.read_i64();
        } else if (is(f, 4, ThriftType::kList)) {
            read_list(in, f, ThriftType::kStruct,
                      [&] { m.row_groups.push_back(read_row_group(in)); });
        } else if (f.id == 8) {  // encryption_algorithm: a plaintext footer of an encrypted file
            m.encrypted = true;
            return false;
        } else {
            return false;
        }
        return true;
    });
    return m;
}

PageHeader parse_page_header(const uint8_t* data, size_t size, const std::string& what) {
    ThriftReader in(data, size, what);
    PageHeader h;
    read_struct(in, [&](const ThriftField& f) {
        if (is(f, 1, ThriftType::kI32)) {
            h.type = static_cast<PageType>(in.read_i32());
        } else if (is(f, 2, ThriftType::kI32)) {
            h.uncompressed_page_size = in.read_i32();
        } else if (is(f, 3, ThriftType::kI32)) {
            h.compressed_page_size = in.read_i32();
        } else if (is(f, 5, ThriftType::kStruct)) {
            DataPageHeader d;
            read_struct(in, [&](const ThriftField& g) {
                if (is(g, 1, ThriftType::kI32)) {
                    d.num_values = in.read_i32();
                } else if (is(g, 2, ThriftType::kI32)) {
                    d.encoding = read_encoding(in);
                } else if (is(g, 3, ThriftType::kI32)) {
                    d.definition_level_encoding = read_encoding(in);
                } else if (is(g, 4, ThriftType::kI32)) {
                    d.repetition_level_encoding = read_encoding(in);
                } else {
                    return false;
                }
                return true;
            });
            h.data_page = d;
        } else if (is(f, 7, ThriftType::kStruct)) {
            DictionaryPageHeader d;
            read_struct(in, [&](const ThriftField& g) {
                if (is(g, 1, ThriftType::kI32)) {
                    d.num_values = in.read_i32();
                } else if (is(g, 2, ThriftType::kI32)) {
                    d.encoding = read_encoding(in);
                } else {
                    return false;
                }
                return true;
            });
            h.dictionary_page = d;
        } else if (is(f, 8, ThriftType::kStruct)) {
            DataPageHeaderV2 d;
            read_struct(in, [&](const ThriftField& g) {
                if (is(g, 1, ThriftType::kI32)) {
                    d.num_values = in.read_i32();
                } else if (is(g, 2, ThriftType::kI32)) {
                    d.num_nulls = in.read_i32();
                } else if (is(g, 3, ThriftType::kI32)) {
                    d.num_rows = in.read_i32();
                } else if (is(g, 4, ThriftType::kI32)) {
                    d.encoding = read_encoding(in);
                } else if (is(g, 5, ThriftType::kI32)) {
                    d.definition_levels_byte_length = in.read_i32();
                } else if (is(g, 6, ThriftType::kI32)) {
                    d.repetition_levels_byte_length = in.read_i32();
                } else if (g.id == 7 &&
                           (g.type == ThriftType::kTrue || g.type == ThriftType::kFalse)) {
                    d.is_compressed = in.read_bool(g);
                } else {
                    return false;
                }
                return true;
            });
            h.data_page_v2 = d;
        } else {
            return false;
        }
        return true;
    });
    h.header_size = in.position();
    return h;
}

}  // namespace greenmoe::parquet
