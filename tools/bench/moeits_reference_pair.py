#!/usr/bin/python3
"""Times the MoEITS reference's per-pair NMI (numpy/scipy, one pair at a time) on two .npy matrices.

Used by bench/moeits_nmi.cpp:  /usr/bin/python3 tools/bench/moeits_reference_pair.py A.npy B.npy [--repeat N]
Prints one JSON line: wall and CPU seconds per pair for float32 input (what the authors feed it: weights
.float().numpy()) and for float64 input (what the MoEITS spec defines), and both NMI values.
The computation is the reference's: np.histogram(bins='auto', density=True) of each matrix,
np.histogram2d over the two edge sets, probabilities renormalized, scipy.stats.entropy,
NMI = (H(A) + H(B) - H(A,B)) / sqrt(H(A) H(B)).
"""
import argparse
import json
import time

import numpy as np
import scipy.stats


def pair_nmi(a, b):
    a, b = a.ravel(), b.ravel()
    hist_a, edges_a = np.histogram(a, bins="auto", density=True)
    hist_b, edges_b = np.histogram(b, bins="auto", density=True)
    joint, _, _ = np.histogram2d(a, b, bins=[edges_a, edges_b], density=True)
    h_a = scipy.stats.entropy(hist_a / hist_a.sum())
    h_b = scipy.stats.entropy(hist_b / hist_b.sum())
    h_ab = scipy.stats.entropy((joint / joint.sum()).ravel())
    return float((h_a + h_b - h_ab) / np.sqrt(h_a * h_b))


def timed(a, b, repeat):
    """Best wall time of `repeat` runs, the CPU time of that run, and the NMI."""
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        value = pair_nmi(a, b)
        run = (time.perf_counter() - t0, time.process_time() - c0, value)
        best = run if best is None or run[0] < best[0] else best
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-f64", action="store_true", help="time the float32 input only")
    args = ap.parse_args()
    a32 = np.load(args.a).astype(np.float32)
    b32 = np.load(args.b).astype(np.float32)
    out = {"numpy": np.__version__, "n": int(a32.size)}
    out["seconds_f32"], out["cpu_seconds_f32"], out["nmi_f32"] = timed(a32, b32, args.repeat)
    if not args.no_f64:
        a64, b64 = a32.astype(np.float64), b32.astype(np.float64)
        out["seconds_f64"], out["cpu_seconds_f64"], out["nmi_f64"] = timed(a64, b64, args.repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
