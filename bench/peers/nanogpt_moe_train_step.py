#!/usr/bin/env python3
"""The PyTorch peer of bench/train_throughput: nanoGPT (GPT-2) whose MLPs are the MoE layers of
docs/moe-spec.md, written as the study's plain PyTorch would write them (router linear, softmax,
top-k, a loop over the experts on the tokens each one got), timed on full training steps.

    python nanogpt_moe_train_step.py --variants dense,switch --threads 2 [--batch 8 --seq 256 …]

The model: learned position embeddings, pre-LayerNorm blocks, causal attention (scaled dot
product), GELU (tanh), the LM head tied to the token embedding, the vocabulary padded to a
multiple of 64 with the loss over the real tokens only, nanoGPT's initialisation. Variants:
dense, olnn, switch, gshard, condmlp (the MLP of every block), and moa (mixture of attention
heads in every block, dense MLPs). Auxiliary losses enter the loss only with a weight > 0 (the
bench's configuration, like greenmoe's defaults, has none); their values are computed, without
gradient, in every forward, as greenmoe's layers compute them for their statistics.

A step: zero_grad, forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW (β 0.9/0.95,
weight decay 0.1 on matrices and embeddings, lr 1e-4). --warmup untimed steps, then --steps
timed ones, each timed alone. Prints one JSON line:
    {"torch": …, "threads": …, "batch": …, "seq": …,
     "variants": {name: {"tokens_per_s": best step, "mean_tokens_per_s": …, "step_s": [...],
                         "params": …, "flops_per_token": …}}}
params counts every learned tensor once (the tied head is the embedding); flops_per_token is
6 × the matrix weights a token passes through (the k chosen experts, the router) plus
12·C·T per layer for attention (k times for moa), greenmoe's GptModel::flops_per_token.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

GUESS_TEMPERATURE = 1.66


def gelu(x):
    return F.gelu(x, approximate="tanh")


def causal_attention(q, k, v):
    """q [B, H, T, hs], k and v [B, H, T, hs]."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # torch < 2.0 (Debian's 1.13): nanoGPT's explicit path.
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~mask, float("-inf"))
    return F.softmax(att, dim=-1) @ v


def aux_losses(cfg, prob, first_choice, gate_per_expert, clean_logits):
    """The four auxiliary losses of docs/moe-spec.md from a layer's routing, unweighted."""
    E = prob.shape[-1]
    f = torch.bincount(first_choice, minlength=E).to(prob.dtype) / first_choice.numel()
    load = E * (f * prob.mean(0)).sum()
    importance = gate_per_expert.var(unbiased=False) / gate_per_expert.mean() ** 2
    z = (torch.logsumexp(clean_logits, dim=-1) ** 2).mean()
    q = F.softmax(clean_logits / GUESS_TEMPERATURE, dim=-1)
    qbar = q.mean(0)
    penalty = (q * (1 - q)).mean() + (1.0 / E - (qbar * (1 - qbar)).mean())
    return {"load": load, "importance": importance, "z": z, "penalty": penalty}


class MoeLayerBase(nn.Module):
    """Routing statistics and auxiliary losses shared by the routed layers."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.aux = torch.zeros(())

    def record_aux(self, prob, first_choice, gate_per_expert, clean_logits):
        weights = self.cfg.aux_weights
        if any(w > 0 for w in weights.values()):
            values = aux_losses(self.cfg, prob, first_choice, gate_per_expert, clean_logits)
            self.aux = sum(weights[n] * values[n] for n in weights if weights[n] > 0)
        else:
            with torch.no_grad():  # the values greenmoe logs; no gradient at weight 0
                aux_losses(self.cfg, prob, first_choice, gate_per_expert, clean_logits)
            self.aux = torch.zeros(())


class Mlp(nn.Module):
    def __init__(self, C, H, bias=True):
        super().__init__()
        self.c_fc = nn.Linear(C, H, bias=bias)
        self.c_proj = nn.Linear(H, C, bias=bias)

    def forward(self, x):
        return self.c_proj(gelu(self.c_fc(x)))

    def active_matmul_params(self):
        return self.c_fc.weight.numel() + self.c_proj.weight.numel()


class ExpertsMoe(MoeLayerBase):
    """olnn, switch and gshard: a router and E GPT-2 MLP experts."""

    def __init__(self, cfg):
        super().__init__(cfg)
        C, E = cfg.n_embd, cfg.n_experts
        self.kind = cfg.mlp
        self.k = {"olnn": cfg.top_k, "switch": 1, "gshard": 2}[self.kind]
        self.router = nn.Linear(C, E, bias=False)
        self.noise = nn.Linear(C, E, bias=False) if self.kind == "olnn" else None
        self.experts = nn.ModuleList([Mlp(C, cfg.hidden) for _ in range(E)])

    def forward(self, x):
        B, T, C = x.shape
        x = x.reshape(-1, C)
        N, E = x.shape[0], len(self.experts)
        h = self.router(x)
        if self.kind == "olnn":
            logits = h
            if self.training:
                logits = h + torch.randn_like(h) * F.softplus(self.noise(x))
            top, choice = logits.topk(self.k, dim=-1)
            gate = F.softmax(top, dim=-1)
            prob = F.softmax(logits, dim=-1)
            keep = torch.ones_like(choice, dtype=torch.bool)
        else:
            prob = F.softmax(h, dim=-1)
            gate, choice = prob.topk(self.k, dim=-1)
            keep = torch.ones_like(choice, dtype=torch.bool)
            if self.kind == "gshard":
                gate = gate / gate.sum(dim=-1, keepdim=True)
                if self.training:
                    keep[:, 1] = torch.rand(N) < torch.clamp(2 * gate[:, 1].detach(), max=1.0)
        # Capacity: one budget per expert, first choices claim slots in token order, then
        # second choices (gshard) fill what is left.
        limit = None
        if self.kind in ("switch", "gshard"):
            cf = self.cfg.capacity_factor if self.training else self.cfg.eval_capacity_factor
            limit = math.ceil(cf * self.k * N / E)
        y = torch.zeros_like(x)
        gate_per_expert = torch.zeros(E)
        for e in range(E):
            tokens, slots = [], []
            left = limit
            for j in range(self.k):
                t = torch.nonzero((choice[:, j] == e) & keep[:, j]).squeeze(1)
                if left is not None:
                    t = t[:left]
                    left -= t.numel()
                tokens.append(t)
                slots.append(torch.full_like(t, j))
            t, j = torch.cat(tokens), torch.cat(slots)
            if t.numel() == 0:
                continue
            w = gate[t, j]
            gate_per_expert[e] = w.detach().sum()
            y.index_add_(0, t, w.unsqueeze(1) * self.experts[e](x[t]))
        self.record_aux(prob, choice[:, 0], gate_per_expert, h)
        return y.view(B, T, C)

    def active_matmul_params(self):
        routers = self.router.weight.numel() + (self.noise.weight.numel() if self.noise else 0)
        return self.k * self.experts[0].active_matmul_params() + routers


class CondMlp(MoeLayerBase):
    """The study's conditional MLP: one shared MLP, a bias pair per path, a guesser."""

    def __init__(self, cfg):
        super().__init__(cfg)
        C, H, E = cfg.n_embd, cfg.hidden, cfg.n_experts
        self.c_fc = nn.Linear(C, H, bias=False)
        self.c_proj = nn.Linear(H, C, bias=False)
        self.b_fc = nn.Parameter(torch.zeros(E, H))
        self.b_proj = nn.Parameter(torch.zeros(E, C))
        self.guesser = nn.Linear(C, E)

    def forward(self, x):
        B, T, C = x.shape
        x = x.reshape(-1, C)
        g = self.guesser(x)
        prob = F.softmax(g / GUESS_TEMPERATURE, dim=-1)
        if self.training:
            path = torch.multinomial(prob.detach(), 1).squeeze(1)
        else:
            path = prob.argmax(dim=-1)
        y = self.c_proj(gelu(self.c_fc(x) + self.b_fc[path])) + self.b_proj[path]
        with torch.no_grad():
            gate_per_expert = torch.zeros(prob.shape[1]).index_add_(0, path, prob[
                torch.arange(path.numel()), path])
        self.record_aux(prob, path, gate_per_expert, g)
        return y.view(B, T, C)

    def active_matmul_params(self):
        return (self.c_fc.weight.numel() + self.c_proj.weight.numel() +
                self.guesser.weight.numel())


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)

    def active_matmul_params(self):
        return self.c_attn.weight.numel() + self.c_proj.weight.numel()

    def attention_passes(self):
        return 1


class MixtureOfAttentionHeads(MoeLayerBase):
    """MoA: shared keys and values, a query map and an output map per expert, olnn routing."""

    def __init__(self, cfg):
        super().__init__(cfg)
        C, E = cfg.n_embd, cfg.n_experts
        self.n_head, self.k = cfg.n_head, cfg.top_k
        self.c_kv = nn.Linear(C, 2 * C)
        self.router = nn.Linear(C, E, bias=False)
        self.noise = nn.Linear(C, E, bias=False)
        self.q_experts = nn.ModuleList([nn.Linear(C, C) for _ in range(E)])
        self.o_experts = nn.ModuleList([nn.Linear(C, C) for _ in range(E)])

    def forward(self, x):
        B, T, C = x.shape
        NH, K, E = self.n_head, self.k, len(self.q_experts)
        xf = x.reshape(-1, C)
        h = self.router(xf)
        logits = h
        if self.training:
            logits = h + torch.randn_like(h) * F.softplus(self.noise(xf))
        top, choice = logits.topk(K, dim=-1)
        gate = F.softmax(top, dim=-1)
        rows = [torch.nonzero(choice == e, as_tuple=True) for e in range(E)]
        q = xf.new_zeros(B * T, K, C)
        for e, (t, j) in enumerate(rows):
            if t.numel():
                q = q.index_put((t, j), self.q_experts[e](xf[t]))
        kv = self.c_kv(x)
        keys, values = (z.view(B, T, NH, C // NH).transpose(1, 2).repeat(1, K, 1, 1)
                        for z in kv.split(C, dim=2))
        q = q.view(B, T, K, NH, C // NH).permute(0, 2, 3, 1, 4).reshape(B, K * NH, T, C // NH)
        z = causal_attention(q, keys, values)
        z = z.view(B, K, NH, T, C // NH).permute(0, 3, 1, 2, 4).reshape(B * T, K, C)
        y = torch.zeros_like(xf)
        gate_per_expert = torch.zeros(E)
        for e, (t, j) in enumerate(rows):
            if t.numel() == 0:
                continue
            w = gate[t, j]
            gate_per_expert[e] = w.detach().sum()
            y.index_add_(0, t, w.unsqueeze(1) * self.o_experts[e](z[t, j]))
        self.record_aux(F.softmax(logits, dim=-1), choice[:, 0], gate_per_expert, h)
        return y.view(B, T, C)

    def active_matmul_params(self):
        per_choice = self.q_experts[0].weight.numel() + self.o_experts[0].weight.numel()
        return (self.c_kv.weight.numel() + self.k * per_choice + self.router.weight.numel() +
                self.noise.weight.numel())

    def attention_passes(self):
        return self.k


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = MixtureOfAttentionHeads(cfg) if cfg.attn == "moa" else CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        if cfg.mlp == "dense":
            self.mlp = Mlp(cfg.n_embd, 4 * cfg.n_embd)
        elif cfg.mlp == "condmlp":
            self.mlp = CondMlp(cfg)
        else:
            self.mlp = ExpertsMoe(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.padded_vocab, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.init_weights()

    def init_weights(self):
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1 or name.endswith((".b_fc", ".b_proj")):
                    if ".ln_" in name and name.endswith(".weight"):
                        p.fill_(1.0)
                    else:
                        p.zero_()
                    continue
                residual = name.endswith("c_proj.weight") or ".o_experts." in name
                p.normal_(0.0, residual_std if residual else 0.02)
            self.wte.weight[self.cfg.vocab_size:].zero_()

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        V = self.cfg.vocab_size
        loss = F.cross_entropy(logits[:, :, :V].reshape(-1, V), targets.view(-1))
        routed = [m for m in self.modules() if isinstance(m, MoeLayerBase)]
        if routed:
            loss = loss + sum(m.aux for m in routed) / len(routed)
        return loss

    def flops_per_token(self, T):
        C = self.cfg.n_embd
        matmul = self.wte.weight.numel()
        attention = 0
        for block in self.h:
            matmul += block.attn.active_matmul_params() + block.mlp.active_matmul_params()
            attention += 12 * C * T * block.attn.attention_passes()
        return 6 * matmul + attention


def make_optimizer(model, lr):
    decay = [p for n, p in model.named_parameters()
             if p.dim() >= 2 and not n.endswith((".b_fc", ".b_proj"))]
    keep = [p for n, p in model.named_parameters()
            if not (p.dim() >= 2 and not n.endswith((".b_fc", ".b_proj")))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": keep, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def time_variant(args, variant):
    cfg = argparse.Namespace(**vars(args))
    cfg.mlp, cfg.attn = ("dense", "moa") if variant == "moa" else (variant, "mha")
    cfg.hidden = args.expert_hidden or 4 * args.n_embd
    cfg.aux_weights = {"load": args.w_load, "importance": args.w_importance, "z": args.lambda_z,
                       "penalty": args.w_penalty}
    torch.manual_seed(args.seed)
    model = Gpt(cfg)
    model.train()
    optimizer = make_optimizer(model, 1e-4)
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randint(0, args.vocab_size, (args.batch, args.seq), generator=g)
    targets = torch.randint(0, args.vocab_size, (args.batch, args.seq), generator=g)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.detach()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    tokens = args.batch * args.seq
    if not math.isfinite(float(loss)):
        raise SystemExit(f"{variant}: loss is {float(loss)}")
    return {"tokens_per_s": tokens / min(times), "mean_tokens_per_s": tokens * len(times) /
            sum(times), "step_s": times, "params": sum(p.numel() for p in model.parameters()),
            "flops_per_token": model.flops_per_token(args.seq), "loss": float(loss)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="dense,switch,condmlp,gshard,moa,olnn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=6)
    ap.add_argument("--n-embd", type=int, default=384)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--padded-vocab", type=int, default=0, help="0: round up to 64")
    ap.add_argument("--n-experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--expert-hidden", type=int, default=0, help="0: 4 n_embd")
    ap.add_argument("--capacity-factor", type=float, default=1.25)
    ap.add_argument("--eval-capacity-factor", type=float, default=2.0)
    ap.add_argument("--w-load", type=float, default=0.0)
    ap.add_argument("--w-importance", type=float, default=0.0)
    ap.add_argument("--lambda-z", type=float, default=0.0)
    ap.add_argument("--w-penalty", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    if args.padded_vocab == 0:
        args.padded_vocab = (args.vocab_size + 63) // 64 * 64
    torch.set_num_threads(args.threads)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
           "seq": args.seq, "variants": {}}
    for variant in args.variants.split(","):
        out["variants"][variant] = time_variant(args, variant)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
