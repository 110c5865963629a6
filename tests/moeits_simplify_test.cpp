// The MoEITS pruning pipeline end to end: simplified models load back with the right
// tensors, the NMI cache is reused, baselines, targets, output safety and the CLI.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "greenmoe/io/npy.h"
#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/moeits/model_adapter.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/moeits/prune_rule.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::error_message;
using testing::TempDir;

std::vector<std::byte> bytes(const SafetensorsModel& m, const std::string& name) {
    const auto b = m.bytes(name);
    return {b.begin(), b.end()};
}

// Rows `rows` of tensor `name` (dim 0), concatenated.
std::vector<std::byte> rows_of(const SafetensorsModel& m, const std::string& name,
                               const std::vector<int>& rows) {
    const auto b = m.bytes(name);
    const size_t row = b.size() / static_cast<size_t>(m.get(name).shape[0]);
    std::vector<std::byte> out;
    for (const int r : rows) {
        out.insert(out.end(), b.begin() + row * r, b.begin() + row * (r + 1));
    }
    return out;
}

// The output at `out` is `in` with only kept[i] experts in in.layers()[i] (spec §4).
void expect_simplified(const MoeModel& in, const fs::path& out,
                       const std::vector<std::vector<int>>& kept) {
    const SafetensorsModel& src = in.tensors();
    const auto dst = SafetensorsModel::open(out);
    std::set<std::string> expected_names;
    std::set<std::string> special;
    for (size_t i = 0; i < in.layers().size(); ++i) {
        const MoeLayer& layer = in.layers()[i];
        SCOPED_TRACE("layer " + std::to_string(layer.layer));
        for (const auto& r : layer.router_tensors) {
            special.insert(r);
            expected_names.insert(r);
            EXPECT_EQ(dst.get(r).shape[0], static_cast<int64_t>(kept[i].size())) << r;
            EXPECT_EQ(bytes(dst, r), rows_of(src, r, kept[i])) << r;
        }
        if (layer.stacked) {
            for (const auto& s : layer.stacked_tensors) {
                special.insert(s);
                expected_names.insert(s);
                EXPECT_EQ(bytes(dst, s), rows_of(src, s, kept[i])) << s;
            }
            continue;
        }
        for (int e = 0; e < layer.n_experts; ++e) {
            for (const auto& sfx : layer.expert_suffixes)
                special.insert(layer.expert_tensor(e, sfx));
        }
        for (size_t k = 0; k < kept[i].size(); ++k) {
            for (const auto& sfx : layer.expert_suffixes) {
                const std::string name = layer.expert_tensor(static_cast<int>(k), sfx);
                expected_names.insert(name);
                // Kept expert k is original expert kept[k], byte for byte.
                EXPECT_EQ(bytes(dst, name), bytes(src, layer.expert_tensor(kept[i][k], sfx)))
                    << name;
                EXPECT_EQ(dst.get(name).shape, src.get(name).shape) << name;
            }
        }
    }
    for (const auto& name : src.tensor_names()) {
        if (special.count(name)) continue;
        expected_names.insert(name);
        ASSERT_NE(dst.find(name), nullptr) << name;
        EXPECT_EQ(dst.get(name).dtype, src.get(name).dtype) << name;
        EXPECT_EQ(dst.get(name).shape, src.get(name).shape) << name;
        EXPECT_EQ(bytes(dst, name), bytes(src, name)) << name;
    }
    const std::set<std::string> names(dst.tensor_names().begin(), dst.tensor_names().end());
    EXPECT_EQ(names, expected_names);

    // The adapter reads the result back with the per-layer counts.
    const auto again = MoeModel::open(out);
    ASSERT_EQ(again.layers().size(), in.layers().size());
    for (size_t i = 0; i < kept.size(); ++i) {
        EXPECT_EQ(again.layers()[i].n_experts, static_cast<int>(kept[i].size()));
    }
}

SimplifyOptions quiet_options(const fs::path& model, const fs::path& out) {
    SimplifyOptions o;
    o.model = model;
    o.out = out;
    o.show_progress = false;
    o.log = [](const std::string&) {};
    return o;
}

std::vector<std::vector<int>> kept_of(const SimplifyResult& r) {
    std::vector<std::vector<int>> k;
    for (const auto& l : r.layers) k.push_back(l.kept);
    return k;
}

std::vector<double> read_matrix_npy(const fs::path& path, int E) {
    const NpyArray a = read_npy(path);
    EXPECT_EQ(a.descr, "<f8");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{E, E}));
    std::vector<double> M(static_cast<size_t>(E * E));
    std::memcpy(M.data(), a.data.data(), M.size() * sizeof(double));
    return M;
}

class HfFixtures : public ::testing::TestWithParam<const char*> {};

TEST_P(HfFixtures, KeepTwoOfFourRoundTrip) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, GetParam());
    testing::write_text_file(dir / "tokenizer.json", "{}");
    auto o = quiet_options(dir, tmp / "out");
    o.keep = 3;
    const auto r = simplify_model(o);
    const auto in = MoeModel::open(dir);
    ASSERT_EQ(r.layers.size(), in.layers().size());
    for (const auto& l : r.layers) {
        EXPECT_EQ(l.kept.size(), 3u);
        EXPECT_FALSE(l.stopped_at_min_keep);
        EXPECT_FALSE(l.nmi_cached);
    }
    expect_simplified(in, tmp / "out", kept_of(r));

    // config.json: per-block counts, kept originals, largest count under the original key.
    const Json config = Json::parse(testing::read_text_file(tmp / "out" / "config.json"));
    EXPECT_EQ(config.at(in.experts_key()), 3);
    EXPECT_EQ(config.at("num_experts_per_tok"), in.config().at("num_experts_per_tok"));
    const auto by_block = config.at("num_experts_by_block").get<std::vector<int>>();
    ASSERT_EQ(by_block.size(), static_cast<size_t>(in.num_layers()));
    for (int l = 0; l < in.num_layers(); ++l) {
        const bool moe = std::any_of(in.layers().begin(), in.layers().end(),
                                     [&](const MoeLayer& x) { return x.layer == l; });
        EXPECT_EQ(by_block[l], moe ? 3 : 0) << l;
    }
    for (const auto& l : r.layers) {
        EXPECT_EQ(config.at("moeits_kept_experts").at(std::to_string(l.layer)), l.kept);
    }
    EXPECT_TRUE(fs::exists(tmp / "out" / "tokenizer.json"));

    // The matrices: readable .npy, symmetric with a zero diagonal, equal to a direct
    // computation, and the kept experts are the rule's at the factor it chose.
    for (size_t i = 0; i < in.layers().size(); ++i) {
        const MoeLayer& layer = in.layers()[i];
        const int E = layer.n_experts;
        const auto M =
            read_matrix_npy(tmp / "out" / "nmi" / fmt::format("layer_{}.npy", layer.layer), E);
        const auto direct = layer_similarity(
            E, layer.kind_weights,
            [&](int e, int k, std::vector<float>& out) { in.read_matrix(layer, e, k, out); });
        EXPECT_EQ(M, direct);
        for (int a = 0; a < E; ++a) {
            EXPECT_EQ(M[a * E + a], 0.0);
            for (int b = 0; b < E; ++b) EXPECT_EQ(M[a * E + b], M[b * E + a]);
        }
        EXPECT_EQ(r.layers[i].kept, prune_layer_to_keep(M, E, 3, layer.top_k).kept);
        // The factor recorded for the layer is one at which the rule keeps exactly these.
        EXPECT_EQ(prune_layer(M, E, r.layers[i].factor, layer.top_k).kept, r.layers[i].kept);
    }

    const Json summary = Json::parse(testing::read_text_file(tmp / "out" / "summary.json"));
    EXPECT_EQ(summary.at("mode"), "keep");
    EXPECT_EQ(summary.at("architecture"), in.architecture());
    EXPECT_EQ(summary.at("parameters").at("total_before"), in.tensors().total_parameters());
    const int64_t ppe = in.layers()[0].params_per_expert;
    const auto n_layers = static_cast<int64_t>(in.layers().size());
    EXPECT_EQ(summary.at("parameters").at("expert_before"), n_layers * 4 * ppe);
    EXPECT_EQ(summary.at("parameters").at("expert_after"), n_layers * 3 * ppe);
    EXPECT_DOUBLE_EQ(summary.at("parameters").at("expert_reduction_percent").get<double>(), 25.0);
    EXPECT_EQ(r.params_after, SafetensorsModel::open(tmp / "out").total_parameters());
}

INSTANTIATE_TEST_SUITE_P(MoeitsSimplify, HfFixtures,
                         ::testing::Values("tiny_mixtral", "tiny_qwen3_moe", "tiny_deepseek_v2"));

TEST(MoeitsSimplify, Qwen2SharedExpertsAndRouterBiasSharded) {
    TempDir tmp;
    const auto dir = testing::qwen2_moe_folder(tmp);
    auto o = quiet_options(dir, tmp / "out");
    o.keep = 2;
    o.criterion = Criterion::RouterNorm;
    o.max_shard_bytes = 2000;  // several shards and an index
    const auto r = simplify_model(o);
    EXPECT_GT(r.files.size(), 2u);
    EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
    EXPECT_FALSE(fs::exists(tmp / "out" / "nmi"));  // router-norm with --keep needs no NMI
    const auto in = MoeModel::open(dir);
    // router-norm keeps the two largest router rows.
    for (size_t i = 0; i < in.layers().size(); ++i) {
        const auto w = in.tensors().read_f32(in.layers()[i].router_weight);
        std::vector<std::pair<double, int>> norms;
        for (int e = 0; e < 4; ++e) {
            double s = 0;
            for (int c = 0; c < 8; ++c) s += double(w[e * 8 + c]) * w[e * 8 + c];
            norms.push_back({-std::sqrt(s), e});
        }
        std::sort(norms.begin(), norms.end());
        std::vector<int> top = {norms[0].second, norms[1].second};
        std::sort(top.begin(), top.end());
        EXPECT_EQ(r.layers[i].kept, top);
    }
    expect_simplified(in, tmp / "out", kept_of(r));  // shared experts byte-identical too
}

TEST(MoeitsSimplify, GreenmoeCheckpoint) {
    TempDir tmp;
    GptConfig cfg = testing::tiny_moe_config("olnn");
    cfg.n_layer = 3;
    cfg.moe_every = 1;
    const auto weights = testing::write_greenmoe_model(tmp / "ckpt" / "model.safetensors", cfg);
    auto o = quiet_options(tmp / "ckpt", tmp / "out");
    o.keep = 3;
    const auto r = simplify_model(o);
    const auto in = MoeModel::open(weights);
    ASSERT_EQ(r.layers.size(), 3u);
    expect_simplified(in, tmp / "out" / "model.safetensors", kept_of(r));
    const auto out = SafetensorsModel::open(tmp / "out");
    EXPECT_EQ(r.files, std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(out.metadata().at("format"), "greenmoe");
    const Json config = Json::parse(out.metadata().at("greenmoe.model"));
    EXPECT_EQ(config.at("n_experts_by_layer"), (std::vector<int>{3, 3, 3}));
    EXPECT_EQ(config.at("n_experts"), 4);  // unchanged: per-layer counts live in the list
    EXPECT_EQ(config.at("mlp"), "olnn");
    const Json moeits = Json::parse(out.metadata().at("greenmoe.moeits"));
    EXPECT_EQ(moeits.at("kept_experts").at("1"), r.layers[1].kept);
    EXPECT_FALSE(fs::exists(tmp / "out" / "config.json"));

    // Pruning the pruned model again records indices of the original model.
    auto o2 = quiet_options(tmp / "out", tmp / "out2");
    o2.keep = 2;
    const auto r2 = simplify_model(o2);
    const Json moeits2 =
        Json::parse(SafetensorsModel::open(tmp / "out2").metadata().at("greenmoe.moeits"));
    for (size_t i = 0; i < 3; ++i) {
        std::vector<int> original;
        for (const int k : r2.layers[i].kept) original.push_back(r.layers[i].kept[k]);
        EXPECT_EQ(moeits2.at("kept_experts").at(std::to_string(i)), original);
    }
}

TEST(MoeitsSimplify, NmiCacheIsReusedAcrossFactors) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    auto o = quiet_options(dir, tmp / "out");
    o.factor = 0.5;
    const auto first = simplify_model(o);
    EXPECT_EQ(first.nmi_layers_computed, 2);
    EXPECT_EQ(first.nmi_layers_reused, 0);

    // Same output folder, another factor: the matrices come from <out>/nmi.
    o.factor = 2.5;
    o.overwrite = true;
    const auto second = simplify_model(o);
    EXPECT_EQ(second.nmi_layers_computed, 0);
    EXPECT_EQ(second.nmi_layers_reused, 2);
    for (const auto& l : second.layers) EXPECT_TRUE(l.nmi_cached);
    const Json summary = Json::parse(testing::read_text_file(tmp / "out" / "summary.json"));
    EXPECT_EQ(summary.at("nmi_cache").at("layers_reused"), 2);
    EXPECT_EQ(summary.at("nmi_cache").at("layers_computed"), 0);
    EXPECT_EQ(summary.at("factor"), 2.5);

    // Kept sets follow the rule on the cached matrices at each factor.
    const auto in = MoeModel::open(dir);
    for (size_t i = 0; i < 2; ++i) {
        const auto M = read_matrix_npy(tmp / "out" / "nmi" / fmt::format("layer_{}.npy", i), 4);
        EXPECT_EQ(first.layers[i].kept, prune_layer(M, 4, 0.5, 2).kept);
        EXPECT_EQ(second.layers[i].kept, prune_layer(M, 4, 2.5, 2).kept);
    }

    // Another output, pointed at the first output's matrices.
    auto o3 = quiet_options(dir, tmp / "other");
    o3.factor = 1.25;
    o3.nmi_cache = tmp / "out" / "nmi";
    const auto third = simplify_model(o3);
    EXPECT_EQ(third.nmi_layers_reused, 2);
    EXPECT_TRUE(fs::exists(tmp / "other" / "nmi" / "layer_1.npy"));

    // Other kind weights give other matrices: the cache does not match.
    auto o4 = quiet_options(dir, tmp / "w");
    o4.factor = 1.25;
    o4.nmi_cache = tmp / "out" / "nmi";
    o4.kind_weights = {1, 0, 0};
    EXPECT_EQ(simplify_model(o4).nmi_layers_computed, 2);

    // A changed model (another file) does not match either.
    const auto dir2 = testing::hf_fixture_folder(tmp, "tiny_qwen3_moe");
    auto o5 = quiet_options(dir2, tmp / "q");
    o5.factor = 1.25;
    o5.nmi_cache = tmp / "out" / "nmi";
    EXPECT_EQ(simplify_model(o5).nmi_layers_computed, 2);
}

TEST(MoeitsSimplify, NeverBelowTopK) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    std::vector<std::string> lines;
    auto o = quiet_options(dir, tmp / "a");
    o.log = [&](const std::string& s) { lines.push_back(s); };
    o.keep = 1;  // top-k is 2
    const auto r = simplify_model(o);
    for (const auto& l : r.layers) {
        EXPECT_EQ(l.kept.size(), 2u);
        EXPECT_TRUE(l.stopped_at_min_keep);
    }
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& s) {
        return s.find("layers 0, 1 stopped pruning at top-k") != std::string::npos;
    }));
    // A very negative factor wants to remove everything: stops at top-k too.
    auto o2 = quiet_options(dir, tmp / "b");
    o2.factor = -100.0;
    for (const auto& l : simplify_model(o2).layers) {
        EXPECT_EQ(l.kept.size(), 2u);
        EXPECT_TRUE(l.stopped_at_min_keep);
    }
}

TEST(MoeitsSimplify, ReduceTarget) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_qwen3_moe");
    auto o = quiet_options(dir, tmp / "out");
    o.reduce_percent = 25.0;
    const auto r = simplify_model(o);
    ASSERT_TRUE(r.factor.has_value());
    EXPECT_GE(r.expert_params_before - r.expert_params_after, r.expert_params_before / 4);
    // The factor reported reproduces the kept sets.
    const auto in = MoeModel::open(dir);
    for (size_t i = 0; i < r.layers.size(); ++i) {
        const auto M = read_matrix_npy(tmp / "out" / "nmi" / fmt::format("layer_{}.npy", i), 4);
        EXPECT_EQ(r.layers[i].kept, prune_layer(M, 4, *r.factor, 2).kept);
    }
    EXPECT_EQ(Json::parse(testing::read_text_file(tmp / "out" / "summary.json")).at("mode"),
              "reduce");
}

TEST(MoeitsSimplify, RandomCriterionIsSeededAndKeepsTheRuleCount) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    auto nmi = quiet_options(dir, tmp / "nmi_run");
    nmi.factor = 0.5;
    const auto by_rule = simplify_model(nmi);
    auto a = quiet_options(dir, tmp / "a");
    a.factor = 0.5;
    a.criterion = Criterion::Random;
    a.seed = 11;
    a.nmi_cache = tmp / "nmi_run" / "nmi";
    const auto ra = simplify_model(a);
    auto b = a;
    b.out = tmp / "b";
    const auto rb = simplify_model(b);
    for (size_t i = 0; i < ra.layers.size(); ++i) {
        EXPECT_EQ(ra.layers[i].kept, rb.layers[i].kept);
        EXPECT_EQ(ra.layers[i].kept.size(), by_rule.layers[i].kept.size());
        EXPECT_TRUE(std::is_sorted(ra.layers[i].kept.begin(), ra.layers[i].kept.end()));
    }
    expect_simplified(MoeModel::open(dir), tmp / "a", kept_of(ra));
    // Over seeds the random choice covers more than one subset.
    std::set<std::vector<int>> seen;
    for (uint64_t seed = 0; seed < 8; ++seed) {
        auto c = quiet_options(dir, tmp / fmt::format("s{}", seed));
        c.keep = 2;
        c.criterion = Criterion::Random;
        c.seed = seed;
        seen.insert(simplify_model(c).layers[0].kept);
    }
    EXPECT_GT(seen.size(), 1u);
}

TEST(MoeitsSimplify, RefusesUnsafeOutputsAndBadOptions) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    auto o = quiet_options(dir, dir);
    o.keep = 3;
    o.overwrite = true;
    auto msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find("input"), std::string::npos) << msg;

    fs::create_directories(tmp / "busy");
    testing::write_text_file(tmp / "busy" / "notes.txt", "mine");
    o.out = tmp / "busy";
    o.overwrite = false;
    msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find("--overwrite"), std::string::npos) << msg;
    // --overwrite replaces only an earlier simplify output.
    o.overwrite = true;
    msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find("not an earlier"), std::string::npos) << msg;
    EXPECT_EQ(testing::read_text_file(tmp / "busy" / "notes.txt"), "mine");

    auto bad = quiet_options(dir, tmp / "x");
    msg = error_message([&] { simplify_model(bad); });
    EXPECT_NE(msg.find("--factor"), std::string::npos) << msg;
    bad.keep = 2;
    bad.factor = 1.0;
    msg = error_message([&] { simplify_model(bad); });
    EXPECT_NE(msg.find("exactly one"), std::string::npos) << msg;
    bad.factor.reset();
    bad.keep = 0;
    msg = error_message([&] { simplify_model(bad); });
    EXPECT_NE(msg.find("--keep"), std::string::npos) << msg;
    bad.keep.reset();
    bad.reduce_percent = 100.0;
    msg = error_message([&] { simplify_model(bad); });
    EXPECT_NE(msg.find("--reduce"), std::string::npos) << msg;
    bad.reduce_percent.reset();
    bad.factor = 1.0;
    bad.memory_budget = 1000;
    msg = error_message([&] { simplify_model(bad); });
    EXPECT_NE(msg.find("--memory-budget"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "x" / "model.safetensors"));

    EXPECT_EQ(parse_criterion("router-norm"), Criterion::RouterNorm);
    EXPECT_EQ(parse_criterion("frequency"), Criterion::Frequency);
    msg = error_message([] { parse_criterion("loudest"); });
    EXPECT_NE(msg.find("moeits (or nmi), random, router-norm, frequency, ean, reap or naee"),
              std::string::npos)
        << msg;
}

// Rewrites a model file with `edit` applied to its tensor list (dtype, shape, presence).
void rewrite_tensors(const fs::path& file,
                     const std::function<void(std::vector<TensorToWrite>&)>& edit) {
    std::vector<std::byte> copy;
    std::map<std::string, std::string> metadata;
    std::vector<TensorToWrite> tensors;
    {
        const auto in = SafetensorsFile::open(file);
        metadata = in.metadata();
        for (const auto& t : in.tensors())
            tensors.push_back({t.name, t.dtype, t.shape, in.data(t)});
        edit(tensors);
        write_safetensors(file.string() + ".new", tensors, metadata);
    }
    fs::rename(file.string() + ".new", file);
}

TensorToWrite& tensor_named(std::vector<TensorToWrite>& tensors, const std::string& name) {
    for (auto& t : tensors) {
        if (t.name == name) return t;
    }
    throw std::runtime_error("no tensor " + name);
}

TEST(MoeitsSimplify, ChecksEveryTensorAgainstTheConfigBeforeWriting) {
    TempDir tmp;
    // A Hugging Face model whose attention tensor disagrees with config.json: before, it was
    // copied through into a "pruned" model that no loader accepts.
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    const std::string q = "model.layers.1.self_attn.q_proj.weight";
    rewrite_tensors(dir / "model.safetensors", [&](std::vector<TensorToWrite>& t) {
        tensor_named(t, q).shape[0] -= 1;  // fewer rows: still within the stored bytes
    });
    auto o = quiet_options(dir, tmp / "out");
    o.keep = 2;
    auto msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find(q), std::string::npos) << msg;
    EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "out"));

    const auto dir2 = testing::hf_fixture_folder(tmp, "tiny_qwen3_moe");
    const std::string o_proj = "model.layers.0.self_attn.o_proj.weight";
    rewrite_tensors(dir2 / "model.safetensors", [&](std::vector<TensorToWrite>& t) {
        tensor_named(t, o_proj).dtype = DType::I32;  // same size as F32, not a weight dtype
    });
    o = quiet_options(dir2, tmp / "out2");
    o.keep = 2;
    msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find(o_proj), std::string::npos) << msg;
    EXPECT_NE(msg.find("dtype"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "out2"));

    // A greenmoe model with a tensor its config does not have, and one of the wrong shape.
    const fs::path g = testing::write_greenmoe_model(tmp / "g" / "model.safetensors",
                                                     testing::tiny_moe_config("gshard"));
    const std::vector<float> stray(16, 0.0f);
    rewrite_tensors(g, [&](std::vector<TensorToWrite>& t) {
        t.push_back({"transformer.h.0.mlp.stray", DType::F32, {16}, stray.data()});
    });
    o = quiet_options(g, tmp / "out3");
    o.keep = 2;
    msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find("unexpected tensor 'transformer.h.0.mlp.stray'"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "out3"));
    rewrite_tensors(g, [&](std::vector<TensorToWrite>& t) {
        std::erase_if(t,
                      [](const TensorToWrite& x) { return x.name == "transformer.h.0.mlp.stray"; });
        tensor_named(t, "transformer.h.1.ln_2.weight").shape = {8, 2};
    });
    msg = error_message([&] { simplify_model(o); });
    EXPECT_NE(msg.find("'transformer.h.1.ln_2.weight' has shape [8, 2]"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(tmp / "out3"));
}

TEST(MoeitsSimplify, KeepAboveTheExpertsOfALayerIsAUsageError) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    auto o = quiet_options(dir, tmp / "out");
    o.keep = 5;  // the layers have 4 experts
    try {
        simplify_model(o);
        FAIL() << "--keep 5 of 4 experts was accepted";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("--keep 5: layer 0"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("only 4 experts"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(tmp / "out"));
    o.keep = 4;  // all of them: allowed (a copy with the summary)
    EXPECT_EQ(simplify_model(o).layers[0].kept.size(), 4u);
}

// tests/fixtures/moeits/hf_fixture_pruning.json (tools/fixtures/make_moeits_fixtures.py): per
// model and MoE layer, M and the kept experts of a numpy run of the spec at several factors.
// The pipeline never goes below top-k, so it is compared with "kept_with_min_keep".
TEST(MoeitsSimplify, MatchesNumpyReferenceFixture) {
    const fs::path fixture =
        fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "moeits" / "hf_fixture_pruning.json";
    ASSERT_TRUE(fs::exists(fixture)) << fixture;
    const Json ref = Json::parse(testing::read_text_file(fixture));
    int checked = 0;
    for (const auto& [name, model] : ref.items()) {
        TempDir tmp;
        const auto dir = testing::hf_fixture_folder(tmp, name);
        const auto in = MoeModel::open(dir);
        const auto& layers = model.at("layers");
        ASSERT_EQ(layers.size(), in.layers().size()) << name;
        std::map<std::string, std::vector<Json>> by_factor;  // factor → per-layer entries
        for (size_t i = 0; i < layers.size(); ++i) {
            const Json& l = layers[i];
            const MoeLayer& mine = in.layers()[i];
            EXPECT_EQ(l.at("layer").get<int>(), mine.layer) << name;
            EXPECT_EQ(l.at("kinds").get<std::vector<std::string>>(), mine.kind_names) << name;
            EXPECT_EQ(l.at("weights").get<std::vector<double>>(), mine.kind_weights) << name;
            EXPECT_EQ(l.at("min_keep").get<int>(), mine.top_k) << name;
        }
        for (const auto& [factor_text, unused] : layers[0].at("kept_with_min_keep").items()) {
            auto o = quiet_options(dir, tmp / fmt::format("out_{}", factor_text));
            o.factor = std::stod(factor_text);
            o.nmi_cache = tmp / "cache";  // computed once per model
            const auto r = simplify_model(o);
            ASSERT_EQ(r.layers.size(), layers.size());
            for (size_t i = 0; i < layers.size(); ++i) {
                SCOPED_TRACE(
                    fmt::format("{} layer {} factor {}", name, r.layers[i].layer, factor_text));
                const Json& l = layers[i];
                EXPECT_EQ(r.layers[i].kept,
                          l.at("kept_with_min_keep").at(factor_text).get<std::vector<int>>());
                EXPECT_EQ(r.layers[i].stopped_at_min_keep,
                          l.at("stopped_at_min_keep").at(factor_text).get<bool>());
                ++checked;
            }
        }
        // The matrices the pipeline cached are numpy's.
        for (size_t i = 0; i < layers.size(); ++i) {
            const int E = in.layers()[i].n_experts;
            const auto M = read_matrix_npy(
                tmp / "cache" / fmt::format("layer_{}.npy", in.layers()[i].layer), E);
            const auto want = layers[i].at("M").get<std::vector<double>>();
            ASSERT_EQ(M.size(), want.size());
            for (size_t j = 0; j < M.size(); ++j) {
                EXPECT_NEAR(M[j], want[j], 1e-12) << name << " layer " << i << " entry " << j;
            }
        }
    }
    EXPECT_GE(checked, 5 * 6);  // 5 layers, at least the paper's 6 factors
}

// The command as a user runs it.
TEST(MoeitsSimplify, Cli) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_deepseek_v2");
    const std::string bin = testing::greenmoe_binary().string();
    auto r = testing::run_command(bin + " simplify --help");
    EXPECT_EQ(r.exit_code, 0);
    for (const char* opt : {"--factor", "--keep", "--reduce", "--criterion", "--nmi-cache",
                            "--max-shard-size", "--memory-budget", "--overwrite", "deepseek_v2"}) {
        EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
    }
    const std::string base = bin + " simplify -q --model " + dir.string() + " --out ";
    r = testing::run_command(base + (tmp / "out").string() + " --factor 1.25");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("layer 0 skipped"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("expert parameters"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(tmp / "out" / "nmi" / "layer_1.npy"));
    EXPECT_TRUE(fs::exists(tmp / "out" / "summary.json"));

    const auto expect_error = [&](const std::string& args, const std::string& what) {
        const auto res = testing::run_command(base + (tmp / "e").string() + args);
        EXPECT_NE(res.exit_code, 0) << args;
        EXPECT_NE(res.output.find(what), std::string::npos) << args << ": " << res.output;
        EXPECT_FALSE(fs::exists(tmp / "e" / "model.safetensors")) << args;
    };
    expect_error("", "--factor F, --keep N or --reduce P");
    expect_error(" --factor 1 --keep 2", "excludes");
    expect_error(" --keep 2 --criterion loud", "moeits (or nmi), random, router-norm");
    // Calibration data that is not there is refused before anything is written.
    expect_error(" --keep 2 --criterion frequency --calibration-data x", "--calibration-data x");
    expect_error(" --keep 2 --criterion reap", "needs calibration data");
    expect_error(" --keep 2 --max-shard-size 5XB", "--max-shard-size");
    expect_error(" --keep 2 --weights 1,2", "--weights");
    expect_error(" --keep two", "--keep");
    const auto same = testing::run_command(base + dir.string() + " --keep 2");
    EXPECT_EQ(same.exit_code, 1);
    EXPECT_EQ(same.output.rfind("greenmoe: error: ", 0), 0u) << same.output;
    const auto exists = testing::run_command(base + (tmp / "out").string() + " --keep 2");
    EXPECT_EQ(exists.exit_code, 1);
    EXPECT_NE(exists.output.find("--overwrite"), std::string::npos) << exists.output;
}

}  // namespace
}  // namespace greenmoe::moeits
