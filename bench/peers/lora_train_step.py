"""The PyTorch + PEFT peer of bench/lora_train_throughput: a LoRA training step (forward,
backward, torch.optim.AdamW on the adapters) of a Hugging Face model folder loaded by
transformers in its stored dtype, with PEFT LoRA adapters (fp32) on the given modules, on
random tokens with the causal-LM loss. Prints one JSON line: {"step_s": best step time,
"peak_rss_bytes": …, "adapter_params": …, "torch": …, "transformers": …, "peft": …, "threads": …}.

    python lora_train_step.py --model DIR --targets q_proj,k_proj --rank 64 --alpha 16 \
        --batch 2 --seq 256 --steps 3 --threads 2 --dtype bfloat16
"""
import argparse
import json
import resource
import time

import peft
import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype))
    config = peft.LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0,
                             target_modules=a.targets.split(","), task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.0)
    vocab = model.config.vocab_size
    ids = (torch.arange(a.batch * a.seq) * 37 % vocab).view(a.batch, a.seq)
    best = float("inf")
    for _ in range(a.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        best = min(best, time.perf_counter() - start)
    print(json.dumps({
        "step_s": best,
        "loss": loss.item(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "adapter_params": sum(p.numel() for p in trainable),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
