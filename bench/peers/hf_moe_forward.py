"""The PyTorch peer of bench/hf_moe_throughput: Qwen2-MoE / OLMoE layers written as Hugging Face
transformers writes them (a loop over the experts hit, index_add_), on the weights of a model
folder (config.json + model.safetensors) in their stored dtype. Prints one JSON line:
{"prefill_s": …, "decode_s": … (per token), "torch": …, "threads": …}.

    python hf_moe_forward.py --model DIR --prefill 256 --decode 16 --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open


def rms_norm(x, weight, eps):
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Mlp(torch.nn.Module):
    def __init__(self, w, prefix):
        super().__init__()
        self.gate = w[prefix + "gate_proj.weight"]
        self.up = w[prefix + "up_proj.weight"]
        self.down = w[prefix + "down_proj.weight"]

    def forward(self, x):
        return F.linear(F.silu(F.linear(x, self.gate)) * F.linear(x, self.up), self.down)


class SparseMoe(torch.nn.Module):
    """Qwen2MoeSparseMoeBlock / OlmoeSparseMoeBlock."""

    def __init__(self, cfg, w, prefix):
        super().__init__()
        self.n = cfg["num_experts"]
        self.top_k = cfg["num_experts_per_tok"]
        self.norm_topk = cfg.get("norm_topk_prob", False)
        self.router = w[prefix + "gate.weight"]
        self.experts = torch.nn.ModuleList(
            [Mlp(w, f"{prefix}experts.{e}.") for e in range(self.n)])
        self.shared = None
        if cfg.get("shared_expert_intermediate_size", 0) > 0:
            self.shared = Mlp(w, prefix + "shared_expert.")
            self.shared_gate = w[prefix + "shared_expert_gate.weight"]

    def forward(self, h):
        x = h.view(-1, h.shape[-1])
        router_logits = F.linear(x, self.router)
        routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        routing_weights, selected = torch.topk(routing_weights, self.top_k, dim=-1)
        if self.norm_topk:
            routing_weights /= routing_weights.sum(dim=-1, keepdim=True)
        routing_weights = routing_weights.to(x.dtype)
        final = torch.zeros_like(x)
        expert_mask = F.one_hot(selected, num_classes=self.n).permute(2, 1, 0)
        expert_hit = torch.greater(expert_mask.sum(dim=(-1, -2)), 0).nonzero()
        for e in expert_hit:
            e = int(e)
            idx, top_x = torch.where(expert_mask[e])
            current = x[None, top_x].reshape(-1, x.shape[-1])
            out = self.experts[e](current) * routing_weights[top_x, idx, None]
            final.index_add_(0, top_x, out.to(x.dtype))
        if self.shared is not None:
            final = final + torch.sigmoid(F.linear(x, self.shared_gate)) * self.shared(x)
        return final.view_as(h)


class Layer(torch.nn.Module):
    def __init__(self, cfg, w, l):
        super().__init__()
        p = f"model.layers.{l}."
        self.eps = cfg["rms_norm_eps"]
        self.heads = cfg["num_attention_heads"]
        self.dim = cfg["hidden_size"] // self.heads
        self.w = {k[len(p):]: v for k, v in w.items() if k.startswith(p)}
        self.moe = SparseMoe(cfg, w, p + "mlp.")

    def proj(self, x, name):
        bias = self.w.get(f"self_attn.{name}.bias")
        return F.linear(x, self.w[f"self_attn.{name}.weight"], bias)

    def forward(self, h, cos, sin, cache):
        w = self.w
        b, t, _ = h.shape
        x = rms_norm(h, w["input_layernorm.weight"], self.eps)
        q, k, v = self.proj(x, "q_proj"), self.proj(x, "k_proj"), self.proj(x, "v_proj")
        if "self_attn.q_norm.weight" in w:  # OLMoE: norm over the whole projection
            q = rms_norm(q, w["self_attn.q_norm.weight"], self.eps)
            k = rms_norm(k, w["self_attn.k_norm.weight"], self.eps)
        q, k, v = (z.view(b, t, self.heads, self.dim).transpose(1, 2) for z in (q, k, v))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        cache[:] = [k, v]
        a = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        h = h + F.linear(a.transpose(1, 2).reshape(b, t, -1), w["self_attn.o_proj.weight"])
        return h + self.moe(rms_norm(h, w["post_attention_layernorm.weight"], self.eps))


class Model(torch.nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg = cfg
        self.w = w
        self.layers = torch.nn.ModuleList([Layer(cfg, w, l) for l in range(cfg["num_hidden_layers"])])
        dim = cfg["hidden_size"] // cfg["num_attention_heads"]
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2).float() / dim))

    def forward(self, ids, caches, start):
        pos = torch.arange(start, start + ids.shape[1]).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        h = F.embedding(ids, self.w["model.embed_tokens.weight"])
        cos, sin = emb.cos().to(h.dtype), emb.sin().to(h.dtype)
        for layer, cache in zip(self.layers, caches):
            h = layer(h, cos, sin, cache)
        h = rms_norm(h, self.w["model.norm.weight"], self.cfg["rms_norm_eps"])
        return F.linear(h, self.w["lm_head.weight"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prefill", type=int, default=256)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(f"{args.model}/config.json") as f:
        cfg = json.load(f)
    w = {}
    with safe_open(f"{args.model}/model.safetensors", framework="pt") as f:
        for name in f.keys():
            w[name] = f.get_tensor(name)
    model = Model(cfg, w)
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, cfg["vocab_size"], (1, args.prefill), generator=g)
    with torch.inference_mode():
        caches = [[] for _ in model.layers]
        start = time.perf_counter()
        logits = model(ids, caches, 0)
        prefill_s = time.perf_counter() - start
        token = logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for i in range(args.decode):
            logits = model(token, caches, args.prefill + i)
            token = logits[:, -1:].argmax(-1)
        decode_s = (time.perf_counter() - start) / max(1, args.decode)
    print(json.dumps({"prefill_s": prefill_s, "decode_s": decode_s, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "dtype": str(w["lm_head.weight"].dtype)}))


if __name__ == "__main__":
    main()
