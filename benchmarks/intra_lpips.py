"""Batched Intra-LPIPS (features once per image, distances from one matrix product) against a per-pair loop
in the style of CDC's script (one ``lpips.LPIPS`` call per pair), on the same 1,000 samples, in one run.

    python benchmarks/intra_lpips.py [--n 1000] [--domain sunglasses] [--backbone alex-random] [--resize 64]

Samples are the embedded world's reference images of the domain (rendered here, so no earlier run is needed)
and the "training" images are its 10-shot set. Prints both times, the speed ratio, the two Intra-LPIPS values
and the largest absolute difference between the per-pair distances of the two implementations.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from domainstudio.data import faces
from domainstudio.metrics.intra_lpips import intra_lpips_from_embeddings
from domainstudio.metrics.lpips_embedding import LpipsEmbedding, squared_distances


def per_pair_loop(samples: torch.Tensor, train: torch.Tensor, model, cluster_cap: int, seed: int):
    """CDC-style: assign by one LPIPS call per (sample, training image), then one call per pair in a cluster."""
    with torch.no_grad():
        dist_to_train = torch.tensor([[model(s[None], t[None]).item() for t in train] for s in samples], dtype=torch.float64)
        nearest = dist_to_train.argmin(1).numpy()
        rng = np.random.default_rng(seed)
        scores, pairs = [], {}
        for k in range(len(train)):
            members = np.flatnonzero(nearest == k)
            if members.size > cluster_cap:
                members = np.sort(rng.choice(members, cluster_cap, replace=False))
            if members.size < 2:
                continue
            d = []
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    value = model(samples[members[a]][None], samples[members[b]][None]).item()
                    pairs[(members[a], members[b])] = value
                    d.append(value)
            scores.append(float(np.mean(d)))
    return float(np.mean(scores)), dist_to_train, pairs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000); p.add_argument("--domain", default="sunglasses")
    p.add_argument("--backbone", default="alex-random"); p.add_argument("--resize", type=int, default=64)
    p.add_argument("--cap", type=int, default=50); p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    samples = np.stack([np.asarray(faces.render(a.domain, "reference", i, 32, 0)[0]) for i in range(a.n)])
    train = np.stack([np.asarray(faces.render(a.domain, "train", i, 32, 0)[0]) for i in range(10)])
    embedding = LpipsEmbedding(a.backbone, resize=a.resize)

    t0 = time.perf_counter()
    e_samples, e_train = embedding(samples), embedding(train)
    batched = intra_lpips_from_embeddings(e_samples, e_train, a.cap, seed=0)
    t_batched = time.perf_counter() - t0

    t0 = time.perf_counter()
    loop_value, loop_to_train, loop_pairs = per_pair_loop(embedding.preprocess(samples), embedding.preprocess(train), embedding.model, a.cap, 0)
    t_loop = time.perf_counter() - t0

    diff_train = (squared_distances(e_samples, e_train) - loop_to_train).abs().max().item()
    idx = np.array(list(loop_pairs))
    ours = squared_distances(e_samples, e_samples)[idx[:, 0], idx[:, 1]]
    diff_pairs = (ours - torch.tensor(list(loop_pairs.values()), dtype=torch.float64)).abs().max().item()
    print(f"{a.n} samples, 10 training images, backbone {a.backbone} at {a.resize} px, cap {a.cap}, {a.threads} threads")
    print(f"  batched : {t_batched:7.2f} s  Intra-LPIPS {batched.intra_lpips:.6f}")
    print(f"  per pair: {t_loop:7.2f} s  Intra-LPIPS {loop_value:.6f}  ({a.n * 10 + len(loop_pairs)} LPIPS calls)")
    print(f"speed ratio per-pair / batched: {t_loop / t_batched:.1f}x")
    print(f"largest |difference|: {max(diff_train, diff_pairs):.2e} (sample-train {diff_train:.2e}, sample-sample {diff_pairs:.2e})")


if __name__ == "__main__":
    main()
