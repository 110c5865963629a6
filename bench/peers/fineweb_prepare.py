#!/usr/bin/env python3
"""build-nanogpt's fineweb.py method on one Parquet file, for bench/prepare_throughput: pyarrow
reads the text column, a multiprocessing pool runs tiktoken's GPT-2 encode_ordinary on each
document (<|endoftext|> first), and uint16 shards of --shard-size tokens are written, the first
one the validation split. Prints one JSON line: seconds, documents, tokens, threads.

    python3 fineweb_prepare.py FILE.parquet --out DIR --bpe-dir GPT2_BPE_DIR [--procs N]

The GPT-2 BPE files are read from --bpe-dir (encoder.json, vocab.bpe) rather than downloaded,
so the peer runs offline; the encoding is tiktoken's "gpt2" (same pattern and ranks).
"""
import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np
import pyarrow.parquet as pq
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

# tiktoken_ext.openai_public.gpt2's pattern.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
enc = None
eot = 50256


def init(bpe_dir):
    global enc
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=os.path.join(bpe_dir, "vocab.bpe"),
        encoder_json_file=os.path.join(bpe_dir, "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2", explicit_n_vocab=50257, pat_str=GPT2_PATTERN,
                            mergeable_ranks=ranks, special_tokens={"<|endoftext|>": eot})


def tokenize(text):  # as fineweb.py's tokenize()
    tokens = [eot]
    tokens.extend(enc.encode_ordinary(text))
    tokens_np = np.array(tokens)
    assert (0 <= tokens_np).all() and (tokens_np < 2**16).all(), "token dictionary too large for uint16"
    return tokens_np.astype(np.uint16)


def write_datafile(filename, tokens_np):
    header = np.zeros(256, dtype=np.int32)  # llm.c's header, as build-nanogpt's later versions
    header[0], header[1], header[2] = 20240520, 1, len(tokens_np)
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens_np.tobytes())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--out", required=True)
    p.add_argument("--bpe-dir", required=True)
    p.add_argument("--procs", type=int, default=max(1, os.cpu_count() // 2))
    p.add_argument("--shard-size", type=int, default=10**8)
    p.add_argument("--text-column", default="text")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    start = time.perf_counter()
    texts = pq.read_table(a.file, columns=[a.text_column]).column(a.text_column).to_pylist()
    shard_index, count, documents, total = 0, 0, 0, 0
    buf = np.empty((a.shard_size,), dtype=np.uint16)
    with mp.Pool(a.procs, initializer=init, initargs=(a.bpe_dir,)) as pool:
        for tokens in pool.imap(tokenize, texts, chunksize=16):
            documents += 1
            total += len(tokens)
            while len(tokens) > 0:
                take = min(len(tokens), a.shard_size - count)
                buf[count:count + take] = tokens[:take]
                count += take
                tokens = tokens[take:]
                if count == a.shard_size:
                    split = "val" if shard_index == 0 else "train"
                    write_datafile(os.path.join(a.out, f"fw_{split}_{shard_index:06d}.bin"), buf)
                    shard_index += 1
                    count = 0
        if count:
            split = "val" if shard_index == 0 else "train"
            write_datafile(os.path.join(a.out, f"fw_{split}_{shard_index:06d}.bin"), buf[:count])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "documents": documents, "tokens": total,
                      "threads": a.procs, "tiktoken": tiktoken.__version__}))


if __name__ == "__main__":
    main()
