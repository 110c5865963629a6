// Instruction data for LoRA healing: JSONL records to formatted text parts, and parts to
// packed or padded token sequences with loss labels (see instruction_data.h).
#include "greenmoe/lora/instruction_data.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe::lora {

namespace {

using nlohmann::json;

enum class Template { InstructionResponse, ChatMl };

Template template_named(const std::string& name) {
    if (name == "instruction-response") return Template::InstructionResponse;
    if (name == "chatml") return Template::ChatMl;
    std::string known;
    for (const std::string& n : instruction_template_names()) {
        known += known.empty() ? n : ", " + n;
    }
    usage_fail("unknown instruction template \"{}\" (known: {})", name, known);
}

enum class Role { System, Human, Gpt };

struct Turn {
    Role role;
    std::string value;
};

constexpr std::string_view kAcceptedRoles =
    "\"system\", \"human\" (or \"user\") and \"gpt\" (or \"assistant\")";

std::optional<Role> role_named(std::string_view name) {
    if (name == "system") return Role::System;
    if (name == "human" || name == "user") return Role::Human;
    if (name == "gpt" || name == "assistant") return Role::Gpt;
    return std::nullopt;
}

// The record's field names, for a message about one it lacks.
std::string field_names(const json& record) {
    std::string names;
    size_t n = 0;
    for (const auto& [key, value] : record.items()) {
        if (n++ == 8) {
            names += ", …";
            break;
        }
        if (!names.empty()) names += ", ";
        names += fmt::format("\"{}\"", key);
    }
    return names.empty() ? "none" : names;
}

// record[key] as a string; `where` is "file:line" and `name` how the message calls the field.
std::string string_field(const json& record, const std::string& key, const std::string& where,
                         const std::string& name) {
    const auto it = record.find(key);
    check(it != record.end(), "{}: {} is missing (the record's fields: {})", where, name,
          field_names(record));
    check(it->is_string(), "{}: {} must be a string, not {}", where, name, it->type_name());
    return it->get<std::string>();
}

// A ShareGPT list ("conversations" of {"from", "value"}) or a chat-message list ("messages" of
// {"role", "content"}).
std::vector<Turn> conversation_turns(const json& record, const std::string& list_key,
                                     const std::string& role_key, const std::string& value_key,
                                     const std::string& where) {
    const json& list = record[list_key];
    check(list.is_array() && !list.empty(),
          "{}: \"{}\" must be a non-empty array of {{\"{}\", \"{}\"}} objects, not {}", where,
          list_key, role_key, value_key, list.is_array() ? "an empty array" : list.type_name());
    std::vector<Turn> turns;
    turns.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
        const json& turn = list[i];
        const std::string name = fmt::format("{}[{}]", list_key, i);
        check(turn.is_object(), "{}: {} must be an object with \"{}\" and \"{}\", not {}", where,
              name, role_key, value_key, turn.type_name());
        const std::string role =
            string_field(turn, role_key, where, fmt::format("{}.{}", name, role_key));
        const std::optional<Role> known = role_named(role);
        check(known.has_value(),
              "{}: {}.{} is \"{}\", a role greenmoe cannot format (accepted: {})", where, name,
              role_key, role, kAcceptedRoles);
        turns.push_back(
            {*known, string_field(turn, value_key, where, fmt::format("{}.{}", name, value_key))});
    }
    return turns;
}

// An Alpaca record as one human and one gpt turn, the input under its own header as the
// MoEITS authors' training script writes it.
std::vector<Turn> alpaca_turns(const json& record, const std::string& where) {
    std::string instruction = string_field(record, "instruction", where, "\"instruction\"");
    const auto input = record.find("input");
    if (input != record.end() && !input->is_null()) {
        check(input->is_string(), "{}: \"input\" must be a string or null, not {}", where,
              input->type_name());
        const std::string& text = input->get_ref<const std::string&>();
        if (!text.empty()) instruction += "\n\nInput:\n" + text;
    }
    return {{Role::Human, std::move(instruction)},
            {Role::Gpt, string_field(record, "output", where, "\"output\"")}};
}

// Appends text, merged into the last part when that is of the same kind: fewer, longer parts
// tokenize as the whole text would.
void append(InstructionExample& example, std::string_view text, bool response) {
    if (text.empty()) return;
    if (!example.parts.empty() && example.parts.back().response == response) {
        example.parts.back().text += text;
    } else {
        example.parts.push_back({std::string(text), response});
    }
}

InstructionExample format_instruction_response(const std::vector<Turn>& turns) {
    InstructionExample example;
    for (size_t i = 0; i < turns.size(); ++i) {
        if (i > 0) append(example, "\n\n", false);
        const Turn& turn = turns[i];
        switch (turn.role) {
            case Role::System:
                append(example, turn.value, false);
                break;
            case Role::Human:
                append(example, "Instruction:\n", false);
                append(example, turn.value, false);
                break;
            case Role::Gpt:
                append(example, "Response:\n", false);
                append(example, turn.value, true);
                break;
        }
    }
    example.ends_in_response = turns.back().role == Role::Gpt;
    return example;
}

InstructionExample format_chatml(const std::vector<Turn>& turns) {
    InstructionExample example;
    for (const Turn& turn : turns) {
        switch (turn.role) {
            case Role::System:
                append(example, "<|im_start|>system\n" + turn.value + "<|im_end|>\n", false);
                break;
            case Role::Human:
                append(example, "<|im_start|>user\n" + turn.value + "<|im_end|>\n", false);
                break;
            case Role::Gpt:
                append(example, "<|im_start|>assistant\n", false);
                append(example, turn.value + "<|im_end|>", true);
                append(example, "\n", false);
                break;
        }
    }
    example.ends_in_response = turns.back().role == Role::Gpt;
    return example;
}

InstructionExample format(Template kind, const std::vector<Turn>& turns) {
    return kind == Template::ChatMl ? format_chatml(turns) : format_instruction_response(turns);
}

InstructionExample example_of(const json& record, Template kind,
                              const InstructionDataOptions& options, const std::string& where) {
    if (record.contains("conversations")) {
        return format(kind, conversation_turns(record, "conversations", "from", "value", where));
    }
    if (record.contains("messages")) {
        return format(kind, conversation_turns(record, "messages", "role", "content", where));
    }
    const bool instruction = record.contains("instruction"), output = record.contains("output");
    if (instruction && output) return format(kind, alpaca_turns(record, where));
    if (record.contains(options.text_field)) {
        InstructionExample example;
        append(example,
               string_field(record, options.text_field, where,
                            fmt::format("\"{}\"", options.text_field)),
               true);
        example.ends_in_response = true;
        return example;
    }
    check(!instruction, "{}: an Alpaca record needs \"output\" beside \"instruction\"", where);
    check(!output, "{}: an Alpaca record needs \"instruction\" beside \"output\"", where);
    fail(
        "{}: the record has no \"conversations\", \"messages\", \"instruction\" and \"output\", "
        "or \"{}\" field (its fields: {})",
        where, options.text_field, field_names(record));
}

bool is_blank(std::string_view line) {
    return std::all_of(line.begin(), line.end(),
                       [](unsigned char c) { return std::isspace(c) != 0; });
}

// The last UTF-8 character of text.
std::string_view last_character(std::string_view text) {
    size_t start = text.size();
    while (start > 0) {
        --start;
        const auto byte = static_cast<unsigned char>(text[start]);
        if ((byte & 0xC0) != 0x80 || text.size() - start == 4) break;
    }
    return text.substr(start);
}

// The tokens the tokenizer's post-processor puts before a text (BOS, [CLS]), found by
// encoding a probe with and without them; those after it (an EOS of add_eos_token) are left
// out, as each example gets the caller's EOS.
std::vector<int> special_prefix(const hf::Tokenizer& tokenizer) {
    const std::vector<int> with = tokenizer.encode("a", true);
    const std::vector<int> without = tokenizer.encode("a", false);
    if (without.empty()) {
        const auto bos = tokenizer.bos_id();
        return bos && !with.empty() && with.front() == *bos ? std::vector<int>{*bos}
                                                            : std::vector<int>{};
    }
    const auto at = std::search(with.begin(), with.end(), without.begin(), without.end());
    return at == with.end() ? std::vector<int>{} : std::vector<int>(with.begin(), at);
}

// Tokenizes parts one at a time, each in the context of the character before it: a part is
// encoded after that character and the character's own tokens cut off. Encoding a part on its
// own would make it the start of a text, which tokenizers that prepend "▁" (Llama, Mixtral)
// or a space give a word boundary the whole text does not have. When the character and the
// part merge into one token, the part is encoded on its own.
class PartEncoder {
  public:
    explicit PartEncoder(const hf::Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

    // The ids of every part of `examples`, in order.
    std::vector<std::vector<int>> encode(const InstructionExample* examples, size_t count) {
        std::vector<std::string> texts;
        std::vector<size_t> context_bytes;
        for (size_t e = 0; e < count; ++e) {
            const auto& parts = examples[e].parts;
            for (size_t p = 0; p < parts.size(); ++p) {
                const std::string_view context =
                    p == 0 ? std::string_view{} : last_character(parts[p - 1].text);
                texts.push_back(std::string(context) + parts[p].text);
                context_bytes.push_back(context.size());
                if (!context.empty() && !context_ids_.contains(context)) {
                    context_ids_.emplace(context, tokenizer_.encode(context, false));
                }
            }
        }
        const std::vector<std::string_view> views(texts.begin(), texts.end());
        std::vector<std::vector<int>> ids = tokenizer_.encode_batch(views, false);
        for (size_t i = 0; i < ids.size(); ++i) {
            if (context_bytes[i] == 0) continue;
            const std::string_view context = std::string_view(texts[i]).substr(0, context_bytes[i]);
            const std::vector<int>& lead = context_ids_.find(context)->second;
            if (ids[i].size() >= lead.size() &&
                std::equal(lead.begin(), lead.end(), ids[i].begin())) {
                ids[i].erase(ids[i].begin(), ids[i].begin() + static_cast<ptrdiff_t>(lead.size()));
            } else {
                ids[i] =
                    tokenizer_.encode(std::string_view(texts[i]).substr(context_bytes[i]), false);
            }
        }
        return ids;
    }

  private:
    const hf::Tokenizer& tokenizer_;
    std::map<std::string, std::vector<int>, std::less<>> context_ids_;
};

}  // namespace

const std::vector<std::string>& instruction_template_names() {
    static const std::vector<std::string> names = {"instruction-response", "chatml"};
    return names;
}

std::vector<InstructionExample> read_instruction_file(const std::filesystem::path& path,
                                                      const InstructionDataOptions& options) {
    const Template kind = template_named(options.template_name);
    const std::string file = path.string();
    const std::string text = read_file(path);
    std::vector<InstructionExample> examples;
    size_t line_no = 0;
    for (size_t start = 0; start < text.size();) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + start, end - start);
        start = end + 1;
        ++line_no;
        if (is_blank(line)) continue;
        const std::string where = fmt::format("{}:{}", file, line_no);
        // OpenHermes-2.5 ships one JSON array (openhermes2_5.json), not JSON lines.
        const bool opens_array = line[line.find_first_not_of(" \t\r\v\f")] == '[';
        const std::string_view hint =
            opens_array ? "; a file holding one JSON array must first become one record per line "
                          "(jq -c '.[]' in.json > out.jsonl)"
                        : "";
        json record;
        try {
            record = json::parse(line);
        } catch (const json::exception& e) {
            // nlohmann's message starts "[json.exception.parse_error.101] parse error at…".
            std::string why = e.what();
            const size_t cut = why.find("] ");
            if (cut != std::string::npos) why = why.substr(cut + 2);
            // The line is the whole text parsed: its column is what locates the fault.
            constexpr std::string_view kLineOne = "parse error at line 1, ";
            if (why.starts_with(kLineOne)) why = why.substr(kLineOne.size());
            fail("{}: not a JSON line ({}){}", where, why, hint);
        }
        check(record.is_object(), "{}: a record must be a JSON object, not {}{}", where,
              record.type_name(), hint);
        examples.push_back(example_of(record, kind, options, where));
    }
    check(!examples.empty(), "{}: no records (the file is empty or holds only blank lines)", file);
    return examples;
}

TrainingSequences build_training_sequences(const std::vector<InstructionExample>& examples,
                                           const hf::Tokenizer& tokenizer,
                                           const InstructionDataOptions& options, int32_t eos_id,
                                           int32_t pad_id) {
    usage_check(options.seq_len >= 1, "the sequence length must be at least 1, not {}",
                options.seq_len);
    check(!examples.empty(), "no instruction examples to make training sequences of");
    const auto in_vocabulary = [&](int32_t id) { return id >= 0 && id < tokenizer.vocab_size(); };
    check(in_vocabulary(eos_id), "{}: EOS id {} is not one of the tokenizer's {} ids",
          tokenizer.source(), eos_id, tokenizer.vocab_size());
    check(options.pack || in_vocabulary(pad_id),
          "{}: pad id {} is not one of the tokenizer's {} ids", tokenizer.source(), pad_id,
          tokenizer.vocab_size());

    const bool all = options.loss_on == LossOn::All;
    const auto seq_len = static_cast<size_t>(options.seq_len);
    const std::vector<int> prefix = special_prefix(tokenizer);
    TrainingSequences out;
    out.seq_len = options.seq_len;
    out.examples = static_cast<int64_t>(examples.size());
    PartEncoder encoder(tokenizer);
    std::vector<int32_t> ids, labels;  // one example's
    // Examples in chunks: encoded on all threads, without holding every part's ids at once.
    constexpr size_t kChunk = 4096;
    for (size_t first = 0; first < examples.size(); first += kChunk) {
        const size_t count = std::min(kChunk, examples.size() - first);
        const std::vector<std::vector<int>> part_ids = encoder.encode(&examples[first], count);
        size_t next_part = 0;
        for (size_t e = first; e < first + count; ++e) {
            const InstructionExample& example = examples[e];
            ids.assign(prefix.begin(), prefix.end());
            labels.assign(ids.size(), kIgnoreLabel);
            if (all) labels = ids;  // BOS too, as transformers' labels = input_ids has it
            for (const InstructionExample::Part& part : example.parts) {
                const std::vector<int>& part_tokens = part_ids[next_part++];
                ids.insert(ids.end(), part_tokens.begin(), part_tokens.end());
                if (all || part.response) {
                    labels.insert(labels.end(), part_tokens.begin(), part_tokens.end());
                } else {
                    labels.insert(labels.end(), part_tokens.size(), kIgnoreLabel);
                }
            }
            ids.push_back(eos_id);
            labels.push_back(all || example.ends_in_response ? eos_id : kIgnoreLabel);
            out.tokens += static_cast<int64_t>(ids.size());
            if (options.pack) {
                out.ids.insert(out.ids.end(), ids.begin(), ids.end());
                out.labels.insert(out.labels.end(), labels.begin(), labels.end());
                continue;
            }
            if (ids.size() > seq_len) {
                ++out.truncated;
                ids.resize(seq_len);
                labels.resize(seq_len);
            }
            out.ids.insert(out.ids.end(), ids.begin(), ids.end());
            out.ids.resize(out.ids.size() + seq_len - ids.size(), pad_id);
            out.labels.insert(out.labels.end(), labels.begin(), labels.end());
            out.labels.resize(out.labels.size() + seq_len - labels.size(), kIgnoreLabel);
        }
    }
    out.rows = static_cast<int64_t>(out.ids.size() / seq_len);
    if (options.pack) {
        check(out.rows > 0,
              "{} tokens from {} example{} do not fill one sequence of {} tokens: use a "
              "shorter sequence length, more data, or padding instead of packing",
              out.tokens, out.examples, out.examples == 1 ? "" : "s", options.seq_len);
        out.dropped_tokens = static_cast<int64_t>(out.ids.size() % seq_len);
        out.ids.resize(static_cast<size_t>(out.rows) * seq_len);
        out.labels.resize(out.ids.size());
    }
    return out;
}

}  // namespace greenmoe::lora
