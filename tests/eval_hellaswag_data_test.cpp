// Tests of the HellaSwag readers: the shared .bz2, the raw jsonl, malformed input.
#include <bzlib.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/eval/hellaswag_files.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::TempDir;
using testing::write_text_file;

fs::path shared_hellaswag() {
    return testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2";
}

std::string bzip2(const std::string& data) {
    std::vector<char> out(data.size() + data.size() / 100 + 700);
    unsigned size = static_cast<unsigned>(out.size());
    std::string in = data;
    EXPECT_EQ(BZ2_bzBuffToBuffCompress(out.data(), &size, in.data(),
                                       static_cast<unsigned>(in.size()), 9, 0, 0),
              BZ_OK);
    return std::string(out.data(), size);
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Items read off `bzcat hellaswag_val_full.txt.bz2`.
const char* const kFirstContext = "Roof shingle removal: A man is sitting on a roof. he";
const std::array<std::string, 4> kFirstEndings = {
    "is using wrap to wrap a pair of skis.",
    "is ripping level tiles off.",
    "is holding a rubik's cube.",
    "starts pulling up roofing on a roof.",
};
const char* const kBondContext =  // item 3729, starting at line 22369
    "Family Life: How to bond with your baby. Have patience. Bonding with your baby doesn't just "
    "happen "
    "overnight. In fact, it's a process.";
const std::array<std::string, 4> kBondEndings = {
    "It could take up to thirty years to bond with and unfold fully. Running to your ob/gyn and "
    "asking them to "
    "call you regularly and schedule appointments will only cause stress to your baby and increase "
    "their chances "
    "of developing cancer.",
    "Getting used to being near your baby is a huge part of bonding, and when you begin the "
    "bonding process, you "
    "are emotionally ready to take that process to a deeper level. Remember, it is easy to get "
    "caught up in "
    "someone else's world and think \" oh my gosh, i'm changing my mind.",
    "It can happen at birth or even a few weeks or months later, sometimes in the process of "
    "everyday caregiving. "
    "At some point, you'll realized how much you love your baby and want to protect him or her.",
    "In some ways, it can become the most important part of your life. Bonding with your baby can "
    "also boost "
    "your immune function, cause you less stress, and let you know when you're holding onto a "
    "breakable "
    "attachment.",
};
const char* const kLastContext =
    "Family Life: How to tell if your teen is being abused. Pay attention to your teen dressing "
    "inappropriately. "
    "If you suspect that your teen is being beaten by someone in their life, you will want to pay "
    "close "
    "attention to their dress code. While all teens have different styles and preferences, be on "
    "the lookout "
    "for any clothing that is out of the norm for your child.";
const std::array<std::string, 4> kLastEndings = {
    "Try to figure out why they are dressing something that is frowned upon.. Understand why your "
    "child is "
    "acting different.",
    "Read the following as a rule for determining your teen's behaviour. You may notice your teen "
    "dressing in "
    "odd outfits that could indicate that they are on a date.",
    "For instance, your teen may try to hide the signs of abuse (e.g. scratches, burns, bruises, "
    "bite marks, "
    "broken bones, etc.",
    "Ask your teen if they have black tights (with stripper straps) or baggy jeans (without "
    "strippers straps). "
    "The more comfortably you can be around your teenager, the better.",
};

// The same three items in rowanz/hellaswag's raw form: WikiHow markers, ctx split into ctx_a/ctx_b,
// the second item's label a string as in the Hugging Face copy.
const char* const kRawJsonl =
    R"({"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "source_id": "activitynet~v_-JhWjGDPHMY"})"
    "\n"
    R"({"activity_label": "Family Life", "ctx_a": "[header] How to bond with your baby [title] Have patience. [step] Bonding with your baby doesn't just happen overnight. In fact, it's a process.", "ctx_b": "", "label": "2", "endings": ["It could take up to thirty years to bond with and unfold fully. Running to your ob/gyn and asking them to call you regularly and schedule appointments will only cause stress to your baby and increase their chances of developing cancer.", "Getting used to being near your baby is a huge part of bonding, and when you begin the bonding process, you are emotionally ready to take that process to a deeper level. [substeps] Remember, it is easy to get caught up in someone else's world and think \" oh my gosh, i'm changing my mind.", "It can happen at birth or even a few weeks or months later, sometimes in the process of everyday caregiving. [substeps] At some point, you'll realized how much you love your baby and want to protect him or her.", "In some ways, it can become the most important part of your life. [substeps] Bonding with your baby can also boost your immune function, cause you less stress, and let you know when you're holding onto a breakable attachment."]})"
    "\n\n"
    R"({"activity_label": "Family Life", "ctx_a": "[header] How to tell if your teen is being abused [title] Pay attention to your teen dressing inappropriately. [step] If you suspect that your teen is being beaten by someone in their life, you will want to pay close attention to their dress code. While all teens have different styles and preferences, be on the lookout for any clothing that is out of the norm for your child.", "ctx_b": "", "label": 2, "endings": ["Try to figure out why they are dressing something that is frowned upon. [title] Understand why your child is acting different.", "Read the following as a rule for determining your teen's behaviour. [substeps] You may notice your teen dressing in odd outfits that could indicate that they are on a date.", "For instance, your teen may try to hide the signs of abuse (e.g. scratches, burns, bruises, bite marks, broken bones, etc.", "Ask your teen if they have black tights (with stripper straps) or baggy jeans (without strippers straps). [step] The more comfortably you can be around your teenager, the better."]})"
    "\n";

TEST(HellaSwagDataText, ReadsTheWholeSharedFile) {
    const auto items = read_hellaswag_text(shared_hellaswag());
    ASSERT_EQ(items.size(), 10042u);
    std::array<int, 4> per_label{};
    for (const auto& item : items) {
        ASSERT_GE(item.label, 0) << item.source;
        ASSERT_LE(item.label, 3) << item.source;
        ++per_label[static_cast<size_t>(item.label)];
        ASSERT_FALSE(item.context.empty()) << item.source;
        ASSERT_FALSE(item.activity_label.empty()) << item.source;
        ASSERT_EQ(item.context.rfind(item.activity_label + ": ", 0), 0u) << item.source;
    }
    // Counted with `bzcat | awk 'NR%6==2' | sort | uniq -c`.
    EXPECT_EQ(per_label, (std::array<int, 4>{2515, 2485, 2584, 2458}));

    const auto& first = items.front();
    EXPECT_EQ(first.activity_label, "Roof shingle removal");
    EXPECT_EQ(first.context, kFirstContext);
    EXPECT_EQ(first.endings, kFirstEndings);
    EXPECT_EQ(first.label, 3);
    EXPECT_EQ(first.source, shared_hellaswag().string() + ":1");

    const auto& bond = items[3728];
    EXPECT_EQ(bond.context, kBondContext);
    EXPECT_EQ(bond.endings, kBondEndings);
    EXPECT_EQ(bond.label, 2);
    EXPECT_EQ(bond.source, shared_hellaswag().string() + ":22369");

    const auto& last = items.back();
    EXPECT_EQ(last.activity_label, "Family Life");
    EXPECT_EQ(last.context, kLastContext);
    EXPECT_EQ(last.endings, kLastEndings);
    EXPECT_EQ(last.label, 2);
    EXPECT_EQ(last.source, shared_hellaswag().string() + ":60247");
}

TEST(HellaSwagDataText, LimitStopsEarly) {
    const auto some = read_hellaswag(shared_hellaswag(), 5);
    ASSERT_EQ(some.size(), 5u);
    EXPECT_EQ(some[0].context, kFirstContext);
    EXPECT_EQ(some[4].source, shared_hellaswag().string() + ":25");
    EXPECT_EQ(
        some[1].context,
        "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. the lady");
}

TEST(HellaSwagDataText, ReadsPlainTextWithCrlfAndMultiStreamBz2) {
    TempDir dir;
    const std::string item1 = "Act: ctx one\n1\na\nb\nc\nd\n";
    const std::string item2 = "Other act: ctx: two\n0\ne\nf\ng\nh\n";
    write_text_file(dir / "plain.txt",
                    "Act: ctx one\r\n1\r\na\r\nb\r\nc\r\nd\r\n" + item2 + "\n\n");
    const auto plain = read_hellaswag(dir / "plain.txt");
    ASSERT_EQ(plain.size(), 2u);
    EXPECT_EQ(plain[0].context, "Act: ctx one");
    EXPECT_EQ(plain[0].activity_label, "Act");
    EXPECT_EQ(plain[0].label, 1);
    EXPECT_EQ(plain[0].endings[3], "d");
    EXPECT_EQ(plain[1].activity_label, "Other act");
    EXPECT_EQ(plain[1].context, "Other act: ctx: two");
    EXPECT_EQ(plain[1].label, 0);
    EXPECT_EQ(plain[1].endings, (std::array<std::string, 4>{"e", "f", "g", "h"}));

    // pbzip2 and `cat a.bz2 b.bz2` give several streams back to back.
    write_text_file(dir / "two.bz2", bzip2(item1) + bzip2(item2));
    const auto two = read_hellaswag(dir / "two.bz2");
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0].context, "Act: ctx one");
    EXPECT_EQ(two[1].endings[0], "e");
    EXPECT_EQ(two[1].source, (dir / "two.bz2").string() + ":7");
}

TEST(HellaSwagDataText, MalformedInputNamesTheLine) {
    TempDir dir;
    const std::string good = "Act: ctx\n1\na\nb\nc\nd\n";
    write_text_file(dir / "label.txt", good + "Act: ctx\n4\na\nb\nc\nd\n");
    std::string message = error_message([&] { read_hellaswag_text(dir / "label.txt"); });
    EXPECT_NE(message.find("label.txt:8:"), std::string::npos) << message;
    EXPECT_NE(message.find("label 0-3"), std::string::npos) << message;
    EXPECT_NE(message.find("\"4\""), std::string::npos) << message;

    write_text_file(dir / "words.txt", "Act: ctx\nthree\na\nb\nc\nd\n");
    message = error_message([&] { read_hellaswag_text(dir / "words.txt"); });
    EXPECT_NE(message.find("words.txt:2:"), std::string::npos) << message;

    write_text_file(dir / "short.txt", good + "Act: ctx\n2\na\n");
    message = error_message([&] { read_hellaswag_text(dir / "short.txt"); });
    EXPECT_NE(message.find("short.txt:9:"), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
    EXPECT_NE(message.find("line 7"), std::string::npos) << message;

    write_text_file(dir / "blank.txt", good + "\n" + good);
    message = error_message([&] { read_hellaswag_text(dir / "blank.txt"); });
    EXPECT_NE(message.find("blank.txt:7:"), std::string::npos) << message;

    // A limit that stops before the bad item does not read it.
    EXPECT_EQ(read_hellaswag_text(dir / "label.txt", 1).size(), 1u);
}

TEST(HellaSwagDataText, BadBz2StreamIsAnError) {
    TempDir dir;
    write_text_file(dir / "garbage.bz2", "BZh9 this is not bzip2 data at all, just text");
    std::string message = error_message([&] { read_hellaswag_text(dir / "garbage.bz2"); });
    EXPECT_NE(message.find("garbage.bz2: corrupt bzip2"), std::string::npos) << message;

    write_text_file(dir / "cut.txt.bz2", read_bytes(shared_hellaswag()).substr(0, 50000));
    message = error_message([&] { read_hellaswag(dir / "cut.txt.bz2"); });
    EXPECT_NE(message.find("cut.txt.bz2: corrupt bzip2 file: it ends in the middle of a stream "
                           "(at byte 50000; truncated?)"),
              std::string::npos)
        << message;

    std::string flipped = bzip2("Act: ctx\n1\na\nb\nc\nd\n");
    flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
    write_text_file(dir / "flipped.bz2", flipped);
    message = error_message([&] { read_hellaswag(dir / "flipped.bz2"); });
    EXPECT_NE(message.find("flipped.bz2: corrupt bzip2 data near byte"), std::string::npos)
        << message;
}

// bzip2 checks a block's CRC at the block's end: a flipped byte inside the real file used to
// surface as whatever the garbled text broke first (a label, an ending count). The reader
// checks the whole file before parsing, and names the offset in the compressed file.
TEST(HellaSwagDataText, CorruptBlockIsNamedAsCorruptionWithItsOffset) {
    TempDir dir;
    const std::string good = read_bytes(shared_hellaswag());
    for (const size_t at : {size_t{300000}, size_t{1000000}, good.size() - 5000}) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ 0x10);
        write_text_file(dir / "bad.txt.bz2", bad);
        const std::string message = error_message([&] { read_hellaswag(dir / "bad.txt.bz2"); });
        EXPECT_NE(message.find("bad.txt.bz2: corrupt bzip2"), std::string::npos)
            << at << ": " << message;
        EXPECT_NE(message.find("near byte"), std::string::npos) << at << ": " << message;
    }
}

TEST(HellaSwagDataJsonl, Preprocess) {
    // strip() comes before the markers go, so a leading "[header] " leaves its space, as in the
    // harness.
    EXPECT_EQ(hellaswag_preprocess("  [header] How to x [title] Do y. [step] Then z.  "),
              " How to x. Do y. Then z.");
    // One pass of "  " → " ", as Python's str.replace: three spaces become two.
    EXPECT_EQ(hellaswag_preprocess("a   b"), "a  b");
    // '.' in the regex does not cross a newline; an unclosed '[' stays.
    EXPECT_EQ(hellaswag_preprocess("a [b\n] c [d"), "a [b\n] c [d");
    EXPECT_EQ(hellaswag_preprocess("a [b] [c]d"), "a d");
    EXPECT_EQ(hellaswag_preprocess(""), "");
}

TEST(HellaSwagDataJsonl, SameItemsAsTheTextFile) {
    TempDir dir;
    write_text_file(dir / "val.jsonl", kRawJsonl);
    const auto raw = read_hellaswag(dir / "val.jsonl");
    ASSERT_EQ(raw.size(), 3u);
    const auto all = read_hellaswag(shared_hellaswag());
    ASSERT_EQ(all.size(), 10042u);
    const HellaSwagItem* text_items[3] = {&all.front(), &all[3728], &all.back()};
    for (size_t i = 0; i < 3; ++i) {
        SCOPED_TRACE(raw[i].source);
        EXPECT_EQ(raw[i].activity_label, text_items[i]->activity_label);
        EXPECT_EQ(raw[i].endings, text_items[i]->endings);
        EXPECT_EQ(raw[i].label, text_items[i]->label);
    }
    // WikiHow items: markers removed exactly as the text file has them.
    EXPECT_EQ(raw[1].context, all[3728].context);
    EXPECT_EQ(raw[2].context, all.back().context);
    // ActivityNet items differ by the harness's ctx_b.capitalize(), which the text file lacks.
    EXPECT_EQ(all.front().context, kFirstContext);
    EXPECT_EQ(raw[0].context, "Roof shingle removal: A man is sitting on a roof. He");
    EXPECT_EQ(raw[1].source, (dir / "val.jsonl").string() + ":2");
    EXPECT_EQ(raw[2].source, (dir / "val.jsonl").string() + ":4");

    const auto one = read_hellaswag_jsonl(dir / "val.jsonl", 1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].label, 3);
}

// The hub's Parquet copy (Rowan/hellaswag, label a string) gives the items rowanz's jsonl gives,
// read directly or found in a data folder.
TEST(HellaSwagDataParquet, SameItemsAsTheJsonl) {
    const fs::path source = GREENMOE_SOURCE_DIR;
    const fs::path jsonl = source / "tests/fixtures/lm-eval/hellaswag/hellaswag_val.jsonl";
    const fs::path hub = source / "tests/fixtures/lm-eval-hub";
    const fs::path parquet = hub / "Rowan/hellaswag/data/validation-00000-of-00001.parquet";
    const auto want = read_hellaswag(jsonl);
    const auto got = read_hellaswag(parquet);
    ASSERT_EQ(got.size(), want.size());
    ASSERT_FALSE(got.empty());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].context, want[i].context);
        EXPECT_EQ(got[i].endings, want[i].endings);
        EXPECT_EQ(got[i].label, want[i].label);
        EXPECT_EQ(got[i].source, parquet.string() + " row " + std::to_string(i + 1));
    }
    EXPECT_EQ(read_hellaswag(parquet, 2).size(), 2u);
    DataLocations where;
    where.data_dir = hub;
    EXPECT_EQ(find_or_fetch_hellaswag("", where), parquet);
    EXPECT_EQ(find_or_fetch_hellaswag(hub, where), parquet);
}

TEST(HellaSwagDataJsonl, CapitalizeLowersTheRestAsPython) {
    TempDir dir;
    write_text_file(
        dir / "cap.jsonl",
        R"({"activity_label": "X", "ctx_a": "Bob waves.", "ctx_b": "then BOB", "label": 0,)"
        R"( "endings": ["a", "b", "c", "d"]})"
        "\n");
    const auto items = read_hellaswag_jsonl(dir / "cap.jsonl");
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].context, "X: Bob waves. Then bob");
}

TEST(HellaSwagDataJsonl, MalformedInputNamesTheLine) {
    TempDir dir;
    const std::string good =
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 1, "endings": ["a", "b", "c", "d"]})"
        "\n";
    const auto expect_error = [&](const std::string& second_line, const std::string& what) {
        write_text_file(dir / "bad.jsonl", good + second_line + "\n");
        const std::string message = error_message([&] { read_hellaswag(dir / "bad.jsonl"); });
        EXPECT_NE(message.find("bad.jsonl:2:"), std::string::npos) << message;
        EXPECT_NE(message.find(what), std::string::npos) << message;
    };
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "label": 1, "endings": ["a", "b", "c", "d"]})",
        "missing field \"ctx_b\"");
    expect_error(R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 1})",
                 "missing field \"endings\"");
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 1, "endings": ["a", "b", "c"]})",
        "list of 4 strings");
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 1, "endings": ["a", "b", 3, "d"]})",
        "list of 4 strings");
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 1, "endings": "abcd"})",
        "list of 4 strings");
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "label": 4, "endings": ["a", "b", "c", "d"]})",
        "label");
    expect_error(
        R"({"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "endings": ["a", "b", "c", "d"]})",
        "missing field \"label\"");
    expect_error(
        R"({"activity_label": 7, "ctx_a": "x", "ctx_b": "y", "label": 1, "endings": ["a", "b", "c", "d"]})",
        "activity_label");
    expect_error(R"({"activity_label": "A", "ctx_a": "x",)", "JSON");
    expect_error(R"(["not", "an", "object"])", "JSON object");
}

TEST(HellaSwagDataDispatch, UnknownExtensionAndMissingFile) {
    TempDir dir;
    write_text_file(dir / "val.csv", "a,b\n");
    std::string message = error_message([&] { read_hellaswag(dir / "val.csv"); });
    EXPECT_NE(message.find("val.csv"), std::string::npos) << message;
    EXPECT_NE(message.find(".jsonl"), std::string::npos) << message;

    message = error_message([&] { read_hellaswag(dir / "missing.jsonl"); });
    EXPECT_NE(message.find("missing.jsonl"), std::string::npos) << message;
    message = error_message([&] { read_hellaswag(dir / "missing.txt.bz2"); });
    EXPECT_NE(message.find("missing.txt.bz2"), std::string::npos) << message;
}

}  // namespace
}  // namespace greenmoe
