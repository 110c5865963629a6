// `greenmoe simplify`: expert pruning of a Mixture-of-Experts model (MoEITS and other criteria).
#include <memory>
#include <string>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/moeits/model_adapter.h"
#include "greenmoe/moeits/simplify.h"

namespace greenmoe::cli {

void register_simplify(CLI::App& app) {
    struct Args {
        std::string model, out, criterion = "moeits", weights, nmi_cache;
        std::string max_shard_size = "5GB", memory_budget = "4GB", calibration_data;
        int64_t calibration_tokens = 16384;
        int calibration_length = 0;
        double factor = 0.0, reduce = 0.0;
        int keep = 0;
        uint64_t seed = 0;
        bool overwrite = false, quiet = false;
    };
    auto args = std::make_shared<Args>();
    std::string supported;
    for (const auto& a : moeits::MoeModel::supported_architectures()) {
        supported += supported.empty() ? "" : ", ";
        supported += a;
    }
    CLI::App* cmd = app.add_subcommand(
        "simplify",
        "Remove experts from a trained MoE model. By default without data (MoEITS): experts "
        "whose weights share much information (normalised mutual information) with others go; "
        "--criterion chooses another rule, data-driven ones from calibration tokens. "
        "Writes a Hugging Face folder (safetensors shards, index, config.json with "
        "num_experts_by_block and moeits_kept_experts) or, for greenmoe checkpoints, a greenmoe "
        "model.safetensors; plus nmi/layer_<L>.npy (each layer's similarity, reused by later "
        "runs on the same model) and summary.json. Architectures: " +
            supported + ".");
    cmd->add_option("--model", args->model,
                    "input: Hugging Face model folder, .safetensors file, or greenmoe "
                    "checkpoint/run folder")
        ->required();
    cmd->add_option("--out", args->out, "output folder (never the input)")->required();
    auto* factor =
        cmd->add_option("--factor", args->factor,
                        "pruning rule factor: a layer's threshold is mean(M) + F·IQR(M); "
                        "larger F prunes less (the paper used 0.5 to 7.5)");
    auto* keep =
        cmd->add_option("--keep", args->keep, "keep N experts per layer")->check(positive_count());
    auto* reduce = cmd->add_option(
        "--reduce", args->reduce,
        "remove at least P % of expert parameters (searches the largest such factor)");
    factor->excludes(keep)->excludes(reduce);
    keep->excludes(reduce);
    cmd->add_option("--criterion", args->criterion,
                    "moeits (or nmi: MoEITS's rule), random (seeded), router-norm (largest "
                    "router rows); from --calibration-data: frequency (most routed), ean "
                    "(largest summed expert output norm), reap (largest mean gate-weighted "
                    "output norm, Cerebras REAP) or naee (the kept set that best reconstructs "
                    "each layer's output, Lu et al. 2024; Hugging Face models). The others keep "
                    "as many experts per layer as --keep, or as the MoEITS rule keeps at "
                    "--factor/--reduce. See docs/pruning-criteria.md")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "seed of --criterion random")->capture_default_str();
    cmd->add_option("--calibration-data", args->calibration_data,
                    "token shards (file, folder or glob of llm.c .bin / .npy), tokenized for "
                    "this model, for --criterion frequency, ean, reap and naee");
    cmd->add_option("--calibration-tokens", args->calibration_tokens,
                    "tokens of calibration data to route")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--calibration-length", args->calibration_length,
                    "tokens per calibration sequence (default 256, or the model's maximum "
                    "when smaller)")
        ->check(positive_count());
    cmd->add_option("--weights", args->weights,
                    "weights of the matrix kinds in the similarity, comma-separated in the "
                    "architecture's order (default: Mixtral w1,w2,w3 1/3 each; Qwen/DeepSeek "
                    "and OLMoE gate,up,down 0.2,0.4,0.4; GraniteMoE input_linear,output_linear "
                    "0.6,0.4; greenmoe c_fc,c_proj 0.5,0.5)");
    cmd->add_option("--nmi-cache", args->nmi_cache,
                    "folder of cached similarity matrices (default OUT/nmi); an earlier "
                    "output's nmi folder of the same model is reused");
    cmd->add_option("--max-shard-size", args->max_shard_size,
                    "largest safetensors shard (e.g. 5GB, 500MB, 2GiB)")
        ->capture_default_str();
    cmd->add_option("--memory-budget", args->memory_budget,
                    "most memory for a layer's similarity: experts are compared in groups "
                    "(re-reading and re-binning matrices, slower) and on fewer threads to stay "
                    "under it; refused if even two matrices at a time do not fit")
        ->capture_default_str();
    cmd->add_flag("--overwrite", args->overwrite,
                  "replace OUT if it holds an earlier `greenmoe simplify` output");
    cmd->add_flag("-q,--quiet", args->quiet, "no progress bars");
    cmd->callback([args, factor, keep, reduce]() {
        check_output_folder(args->out, "--out");
        moeits::SimplifyOptions o;
        o.model = args->model;
        o.out = args->out;
        if (factor->count() > 0) o.factor = args->factor;
        if (keep->count() > 0) o.keep = args->keep;
        if (reduce->count() > 0) o.reduce_percent = args->reduce;
        usage_check(o.factor || o.keep || o.reduce_percent,
                    "simplify: give one target: --factor F, --keep N or --reduce P");
        o.criterion = moeits::parse_criterion(args->criterion);
        o.seed = args->seed;
        o.calibration_data = args->calibration_data;
        o.calibration_tokens = args->calibration_tokens;
        o.calibration_sequence_length = args->calibration_length;
        if (!args->weights.empty()) o.kind_weights = moeits::parse_kind_weights(args->weights);
        o.nmi_cache = args->nmi_cache;
        o.max_shard_bytes = parse_byte_size(args->max_shard_size, "--max-shard-size");
        o.memory_budget = parse_byte_size(args->memory_budget, "--memory-budget");
        o.overwrite = args->overwrite;
        o.show_progress = !args->quiet;
        moeits::simplify_model(o);
    });
}

}  // namespace greenmoe::cli
