// Tests of the GPT-2 tokenizer: public vectors, an independent Python reference, the
// pre-tokenizer's edge cases, byte-exact round trips, and strict loading errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/pretokenize.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::read_text_file;
using testing::TempDir;
using testing::write_text_file;

class Tokenizer : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tokenizer_ = std::make_unique<Gpt2Tokenizer>(
            Gpt2Tokenizer::load(greenmoe::testing::tokenizer_dir()));
    }
    static void TearDownTestSuite() { tokenizer_.reset(); }
    static const Gpt2Tokenizer& tok() { return *tokenizer_; }

  private:
    static std::unique_ptr<Gpt2Tokenizer> tokenizer_;
};
std::unique_ptr<Gpt2Tokenizer> Tokenizer::tokenizer_;

std::vector<std::string> pieces_of(std::string_view text) {
    std::vector<std::string> pieces;
    pretokenize(text, [&](std::string_view p) { pieces.emplace_back(p); });
    return pieces;
}

// Expects `body` to throw Error whose message contains every one of `parts`.
template <typename Body>
void expect_error(Body&& body, const std::vector<std::string>& parts) {
    try {
        body();
        ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
        for (const auto& part : parts) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
                << "message: " << e.what() << "\nexpected to contain: " << part;
        }
    }
}

TEST_F(Tokenizer, VocabularyShape) {
    EXPECT_EQ(tok().vocab_size(), 50257);
    EXPECT_EQ(tok().eot_token(), 50256);
    EXPECT_EQ(tok().token_bytes(50256), "<|endoftext|>");
    EXPECT_EQ(tok().token_bytes(220), " ");
    EXPECT_EQ(tok().token_bytes(198), "\n");
    EXPECT_EQ(tok().token_bytes(31373), "hello");
    EXPECT_EQ(tok().token_bytes(995), " world");
}

TEST_F(Tokenizer, PublicVectors) {
    EXPECT_EQ(tok().encode("hello world"), (std::vector<int>{31373, 995}));
    EXPECT_EQ(tok().encode("hello <|endoftext|>", true), (std::vector<int>{31373, 220, 50256}));
    EXPECT_EQ(tok().encode("Hello world"), (std::vector<int>{15496, 995}));
    EXPECT_EQ(tok().encode(" Hello World!"), (std::vector<int>{18435, 2159, 0}));
    EXPECT_EQ(tok().encode("Führer"), (std::vector<int>{37, 9116, 71, 11751}));
    EXPECT_EQ(tok().encode("333333333"), (std::vector<int>{24840, 2091, 20370}));
    EXPECT_EQ(tok().encode("!!!!!!"), (std::vector<int>{13896, 3228}));
    EXPECT_EQ(tok().encode(" discards"), (std::vector<int>{1221, 1371}));
}

TEST_F(Tokenizer, SpecialTokenOnlyWhenAllowed) {
    const std::string text = "hello <|endoftext|>";
    const std::vector<int> as_text{31373, 1279, 91, 437, 1659, 5239, 91, 29};
    EXPECT_EQ(tok().encode(text, false), as_text);
    EXPECT_EQ(tok().encode_ordinary(text), as_text);
    EXPECT_EQ(tok().decode(as_text), text);
    EXPECT_EQ(tok().encode("<|endoftext|>a<|endoftext|><|endoftext|>", true),
              (std::vector<int>{50256, 64, 50256, 50256}));
    // A split special token is ordinary text either way.
    EXPECT_EQ(tok().encode("<|endof text|>", true), tok().encode_ordinary("<|endof text|>"));
}

TEST_F(Tokenizer, WhitespacePieces) {
    using V = std::vector<std::string>;
    EXPECT_EQ(pieces_of("a  b"), (V{"a", " ", " b"}));
    EXPECT_EQ(pieces_of("trailing   "), (V{"trailing", "   "}));
    EXPECT_EQ(pieces_of("\n\n"), (V{"\n\n"}));
    EXPECT_EQ(pieces_of("a\n\nb"), (V{"a", "\n", "\n", "b"}));
    EXPECT_EQ(pieces_of("tab\t\tx"), (V{"tab", "\t", "\t", "x"}));
    EXPECT_EQ(pieces_of("a \n b"), (V{"a", " \n", " b"}));
    EXPECT_EQ(pieces_of("x\u3000\u3000y"), (V{"x", "\u3000", "\u3000", "y"}));
    EXPECT_EQ(pieces_of(" 's ''s"), (V{" '", "s", " ''", "s"}));
    EXPECT_EQ(pieces_of("12ab!? "), (V{"12", "ab", "!?", " "}));

    EXPECT_EQ(tok().encode("a  b"), (std::vector<int>{64, 220, 275}));
    EXPECT_EQ(tok().encode("trailing   "), (std::vector<int>{9535, 4386, 220, 220, 220}));
    EXPECT_EQ(tok().encode("\n\n"), (std::vector<int>{628}));
    EXPECT_EQ(tok().encode("a\n\nb"), (std::vector<int>{64, 198, 198, 65}));
    EXPECT_EQ(tok().encode("tab\t\tx"), (std::vector<int>{8658, 197, 197, 87}));
    EXPECT_EQ(tok().encode("\tx"), (std::vector<int>{197, 87}));
    EXPECT_TRUE(tok().encode("").empty());
}

TEST_F(Tokenizer, Contractions) {
    using V = std::vector<std::string>;
    EXPECT_EQ(pieces_of("I'll"), (V{"I", "'ll"}));
    EXPECT_EQ(pieces_of("don't"), (V{"don", "'t"}));
    EXPECT_EQ(pieces_of("DON'T"), (V{"DON", "'", "T"}));  // the pattern is case-sensitive
    EXPECT_EQ(pieces_of("y'all'd've"), (V{"y", "'", "all", "'d", "'ve"}));
    EXPECT_EQ(tok().encode("I'll"), (std::vector<int>{40, 1183}));
    EXPECT_EQ(tok().encode("don't"), (std::vector<int>{9099, 470}));
}

TEST_F(Tokenizer, InvalidUtf8IsSymbols) {
    using V = std::vector<std::string>;
    // Invalid bytes join symbol runs; they never break letters apart from a space.
    EXPECT_EQ(pieces_of("a\xff\xfe b \x80x"), (V{"a", "\xff\xfe", " b", " \x80", "x"}));
    // Overlong '/', a surrogate, a truncated 3-byte sequence: all invalid bytes.
    EXPECT_EQ(pieces_of("\xc0\xaf\xed\xa0\x80\xe2\x82"), (V{"\xc0\xaf\xed\xa0\x80\xe2\x82"}));
    EXPECT_EQ(decode_utf8("\xf4\x90\x80\x80", 0).code_point, kInvalidCodePoint);
    EXPECT_EQ(decode_utf8("\xf0\x9f\x98\x80", 0).code_point, 0x1F600u);
    EXPECT_EQ(decode_utf8("\xe2\x82\xac", 0).length, 3u);
}

TEST_F(Tokenizer, UnicodeClasses) {
    EXPECT_STREQ(unicode_version(), "14.0.0");
    EXPECT_EQ(char_class(0x00E9), CharClass::kLetter);  // é
    EXPECT_EQ(char_class(0x4E2D), CharClass::kLetter);  // 中
    EXPECT_EQ(char_class(0x0663), CharClass::kNumber);  // Arabic-Indic three
    EXPECT_EQ(char_class(0x00BD), CharClass::kNumber);  // ½ (No)
    EXPECT_EQ(char_class(0x3000), CharClass::kSpace);   // ideographic space
    EXPECT_EQ(char_class(0x0085), CharClass::kSpace);   // NEL
    EXPECT_EQ(char_class(0x001C), CharClass::kOther);   // isspace() but not White_Space
    EXPECT_EQ(char_class(0x200B), CharClass::kOther);   // zero-width space is Cf
    EXPECT_EQ(char_class(0x0301), CharClass::kOther);   // combining acute is Mn
    EXPECT_EQ(char_class(0x1F600), CharClass::kOther);  // emoji
    EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
}

// Vectors from tools/fixtures/gpt2_bpe_reference.py (OpenAI's algorithm in Python).
TEST_F(Tokenizer, MatchesPythonReference) {
    const auto path = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/tokenizer_vectors.json";
    const auto doc = nlohmann::json::parse(read_text_file(path));
    const auto& vectors = doc.at("vectors");
    ASSERT_GE(vectors.size(), 200u);
    size_t long_pieces = 0;
    for (const auto& v : vectors) {
        const std::string text = v.at("text").get<std::string>();
        const std::vector<int> expected = v.at("tokens").get<std::vector<int>>();
        EXPECT_EQ(tok().encode_ordinary(text), expected) << "text: " << text;
        EXPECT_EQ(tok().decode(expected), text);
        for (const auto& p : pieces_of(text)) long_pieces += p.size() > 64;
    }
    // The heap-based merge for long pieces must be among what the reference checked.
    EXPECT_GE(long_pieces, 5u);
}

TEST_F(Tokenizer, RoundTripSharedTexts) {
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(testing::shared_data() / "text")) {
        if (entry.path().extension() != ".txt") continue;
        ++files;
        const std::string text = read_text_file(entry.path());
        ASSERT_FALSE(text.empty());
        const auto tokens = tok().encode(text, false);
        EXPECT_LT(tokens.size(), text.size()) << entry.path();
        EXPECT_EQ(tok().decode(tokens), text) << entry.path();
        const auto with_special = tok().encode(text, true);
        EXPECT_EQ(tok().decode(with_special), text) << entry.path();
    }
    EXPECT_GE(files, 3u);
}

// Whole shared files against tools/fixtures/gpt2_bpe_reference.py: token count and the
// sum of all ids (the special token taken as text).
TEST_F(Tokenizer, WholeFilesMatchReference) {
    struct Expected {
        const char* file;
        size_t count;
        int64_t sum;
    };
    // tinyshakespeare's 338,025 is also nanoGPT's shakespeare count (301,966 + 36,059).
    for (const Expected& e : {Expected{"tinyshakespeare.txt", 338025, 1405356689},
                              Expected{"corpus_en.txt", 30854, 132830908},
                              Expected{"tinystories_sample.txt", 953, 2468354}}) {
        const std::string text = read_text_file(testing::shared_data() / "text" / e.file);
        const auto tokens = tok().encode_ordinary(text);
        EXPECT_EQ(tokens.size(), e.count) << e.file;
        int64_t sum = 0;
        for (int t : tokens) sum += t;
        EXPECT_EQ(sum, e.sum) << e.file;
    }
    const auto first = tok().encode_ordinary("First Citizen:\nBefore we proceed any further,");
    EXPECT_EQ(first, (std::vector<int>{5962, 22307, 25, 198, 8421, 356, 5120, 597, 2252, 11}));
}

TEST_F(Tokenizer, ParallelMatchesSerial) {
    const auto dir = testing::shared_data() / "text";
    const std::string text = read_text_file(dir / "tinyshakespeare.txt") +
                             read_text_file(dir / "corpus_en.txt") +
                             read_text_file(dir / "tinyshakespeare.txt");
    ASSERT_GT(text.size(), size_t{2} << 20);  // large enough to be split
    EXPECT_EQ(tok().encode_ordinary_parallel(text), tok().encode_ordinary(text));
}

TEST_F(Tokenizer, RoundTripRandomBytes) {
    std::mt19937 rng(12345);
    // Bytes drawn from ranges that exercise every decoder branch, plus spaces and quotes.
    const std::vector<std::pair<int, int>> ranges{{0x00, 0x7F}, {0x80, 0xBF}, {0xC0, 0xDF},
                                                  {0xE0, 0xEF}, {0xF0, 0xFF}, {' ', ' '},
                                                  {'\'', '\''}, {'a', 'z'}};
    for (int round = 0; round < 300; ++round) {
        std::string text(rng() % 120, '\0');
        for (auto& c : text) {
            const auto& [lo, hi] = ranges[rng() % ranges.size()];
            c = static_cast<char>(lo +
                                  static_cast<int>(rng() % static_cast<unsigned>(hi - lo + 1)));
        }
        std::string joined;
        for (const auto& p : pieces_of(text)) {
            EXPECT_FALSE(p.empty());
            joined += p;
        }
        ASSERT_EQ(joined, text);
        ASSERT_EQ(tok().decode(tok().encode(text, false)), text) << "round " << round;
    }
    // One long piece of random symbols and bytes goes through the heap merge.
    std::string symbols(5000, '\0');
    for (auto& c : symbols) c = static_cast<char>(0x80 + rng() % 0x80);
    EXPECT_EQ(tok().decode(tok().encode_ordinary(symbols)), symbols);
}

TEST_F(Tokenizer, DecodeRejectsUnknownToken) {
    expect_error([&] { tok().decode(std::vector<int>{1, 50257}); }, {"50257", "vocabulary"});
    expect_error([&] { tok().token_bytes(-1); }, {"-1"});
}

// Most cases use a small vocabulary built from the real one (its 256 byte tokens, one
// merge, the end-of-text token), which loads fast and checks nothing assumes 50257.
class TokenizerFiles : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        const auto src = testing::tokenizer_dir();
        real_encoder_ = read_text_file(src / "encoder.json");
        real_merges_ = read_text_file(src / "vocab.bpe");
        const auto real = nlohmann::json::parse(real_encoder_);
        nlohmann::json small;
        for (const auto& [key, id] : real.items()) {
            if (id.get<int>() < 256) small[key] = id;
        }
        small["he"] = 256;
        small["<|endoftext|>"] = 257;
        small_encoder_ = small.dump();
    }
    fs::path make(const std::string& encoder, const std::string& merges) {
        write_text_file(dir_ / "encoder.json", encoder);
        write_text_file(dir_ / "vocab.bpe", merges);
        return dir_.path();
    }
    TempDir dir_;
    static std::string real_encoder_, real_merges_, small_encoder_;
};
std::string TokenizerFiles::real_encoder_, TokenizerFiles::real_merges_,
    TokenizerFiles::small_encoder_;

TEST_F(TokenizerFiles, LoadsCopies) {
    const auto t = Gpt2Tokenizer::load(make(real_encoder_, real_merges_));
    EXPECT_EQ(t.encode("hello world"), (std::vector<int>{31373, 995}));
    EXPECT_EQ(t.dir(), dir_.path());
}

TEST_F(TokenizerFiles, SmallVocabulary) {
    const auto t = Gpt2Tokenizer::load(make(small_encoder_, "#version: 0.2\nh e\n"));
    EXPECT_EQ(t.vocab_size(), 258);
    EXPECT_EQ(t.eot_token(), 257);
    const auto tokens = t.encode("hehe<|endoftext|>");
    EXPECT_EQ(tokens, (std::vector<int>{256, 256, 257}));
    EXPECT_EQ(t.decode(tokens), "hehe<|endoftext|>");
}

TEST_F(TokenizerFiles, MissingFilesAreNamed) {
    expect_error([&] { Gpt2Tokenizer::load(dir_.path()); }, {"encoder.json"});
    write_text_file(dir_ / "encoder.json", small_encoder_);
    expect_error([&] { Gpt2Tokenizer::load(dir_.path()); }, {"vocab.bpe"});
}

TEST_F(TokenizerFiles, GarbledEncoderIsNamed) {
    const std::string merges = "#version: 0.2\nh e\n";
    const auto truncated = real_encoder_.substr(0, real_encoder_.size() / 2);
    expect_error([&] { Gpt2Tokenizer::load(make(truncated, merges)); }, {"encoder.json", "JSON"});
    expect_error([&] { Gpt2Tokenizer::load(make("[1, 2]", merges)); }, {"encoder.json"});
    expect_error([&] { Gpt2Tokenizer::load(make(R"({"a": 0, "b": "x"})", merges)); },
                 {"encoder.json", "\"b\""});
    std::string no_eot = small_encoder_;
    no_eot.replace(no_eot.find("<|endoftext|>"), 13, "<|endofteXt|>");
    expect_error([&] { Gpt2Tokenizer::load(make(no_eot, merges)); },
                 {"encoder.json", "<|endoftext|>"});
    std::string duplicate_id = small_encoder_;
    duplicate_id.replace(duplicate_id.find("\"he\":256"), 10, "\"he\":255");
    expect_error([&] { Gpt2Tokenizer::load(make(duplicate_id, merges)); }, {"encoder.json", "255"});
}

TEST_F(TokenizerFiles, GarbledMergesAreNamedWithLine) {
    expect_error([&] { Gpt2Tokenizer::load(make(small_encoder_, "#version: 0.2\nh e\nabc\n")); },
                 {"vocab.bpe:3", "two tokens"});
    expect_error([&] { Gpt2Tokenizer::load(make(small_encoder_, "#version: 0.2\nh e\nh i\n")); },
                 {"vocab.bpe:3", "encoder.json does not have"});
    expect_error([&] { Gpt2Tokenizer::load(make(small_encoder_, "#version: 0.2\n")); },
                 {"vocab.bpe", "no merges"});
    expect_error([&] { Gpt2Tokenizer::load(make(small_encoder_, "#version: 0.2\nh e\nh e\n")); },
                 {"vocab.bpe", "repeats"});
}

}  // namespace
}  // namespace greenmoe
