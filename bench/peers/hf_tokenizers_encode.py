#!/usr/bin/env python3
"""Peer benchmark: Hugging Face `tokenizers` encoding speed on a text file.

    python bench/peers/hf_tokenizers_encode.py --tokenizer bench/data/qwen2_style_8k_tokenizer.json \
        --text ../shared/data/text/tinyshakespeare.txt --threads 4 --repeats 5 [--dump-ids ids.json]

Development/comparison tool only (needs `pip install tokenizers`, e.g. the /tmp/ref venv of
tools/fixtures/README.md); nothing in the build or CI runs it.

What it measures. The text is read as UTF-8 and split into paragraphs: a paragraph runs up to
and including the blank-line separator after it (a "\\n" followed by one or more "\\n"), so each
paragraph keeps its trailing newlines and the paragraphs concatenated give back the file
exactly. Timed: Tokenizer.encode_batch(paragraphs, add_special_tokens=False), best of
--repeats runs after one untimed warm-up run. --threads N sets RAYON_NUM_THREADS=N before
`tokenizers` is imported (the size of its Rayon pool, which encode_batch uses). With N=1 a
plain loop of Tokenizer.encode(p, add_special_tokens=False) is timed as well and the faster
of the two is reported ("method" says which).

Output: one JSON line
    {"threads": N, "mb_per_s": ..., "bytes": ..., "tokens": ..., "seconds": best,
     "method": "encode_batch"|"encode_loop", "paragraphs": ..., "tokenizers": "<version>"}
with bytes = UTF-8 size of the whole text, MB = 1e6 bytes, tokens = total ids produced.

--dump-ids FILE writes the ids of all paragraphs, concatenated in order, as one JSON list, to
cross-check another implementation. Note that ids are per paragraph: a pipeline whose
normalizer or pre-tokenizer looks at the start of the input (Llama/Mixtral's Prepend "▁",
Metaspace prepend_scheme) treats every paragraph as a start, so the cross-check must encode
the same paragraphs, not the whole text at once.
"""

import argparse
import json
import os
import re
import sys
import time

PARAGRAPH = re.compile(r".*?\n\n+|.+", re.S)


def split_paragraphs(text):
    """Paragraphs with their trailing blank-line separators; "".join(result) == text."""
    paras = PARAGRAPH.findall(text)
    assert "".join(paras) == text
    return paras


def main():
    ap = argparse.ArgumentParser(description="HF tokenizers encode throughput (peer bench)")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json file")
    ap.add_argument("--text", required=True, help="UTF-8 text file")
    ap.add_argument("--threads", type=int, default=1, help="RAYON_NUM_THREADS (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs, best kept (default 3)")
    ap.add_argument("--dump-ids", metavar="FILE", help="write the concatenated ids as JSON")
    args = ap.parse_args()
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be at least 1")

    # Must be set before tokenizers is imported: the Rayon pool is sized once.
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(args.tokenizer)
    with open(args.text, encoding="utf-8", newline="") as f:
        text = f.read()
    paras = split_paragraphs(text)
    n_bytes = len(text.encode("utf-8"))

    def run_batch():
        return [e.ids for e in tok.encode_batch(paras, add_special_tokens=False)]

    def run_loop():
        return [tok.encode(p, add_special_tokens=False).ids for p in paras]

    methods = [("encode_batch", run_batch)]
    if args.threads == 1:
        methods.append(("encode_loop", run_loop))

    best = None
    ids = None
    for name, fn in methods:
        out = fn()                       # warm-up, untimed
        if ids is None:
            ids = out
        elif out != ids:
            sys.exit(f"error: {name} gave different ids from encode_batch")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if best is None or dt < best[1]:
                best = (name, dt)

    n_tokens = sum(len(x) for x in ids)
    if args.dump_ids:
        with open(args.dump_ids, "w", encoding="utf-8") as f:
            json.dump([i for x in ids for i in x], f, separators=(",", ":"))
            f.write("\n")
    print(json.dumps({"threads": args.threads,
                      "mb_per_s": round(n_bytes / best[1] / 1e6, 4),
                      "bytes": n_bytes, "tokens": n_tokens,
                      "seconds": round(best[1], 6), "method": best[0],
                      "paragraphs": len(paras), "tokenizers": tokenizers.__version__}))


if __name__ == "__main__":
    main()
