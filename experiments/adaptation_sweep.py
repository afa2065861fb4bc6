"""Adaptation experiments on the embedded benchmark: one row per setting, plus a sample grid per setting.

    python experiments/adaptation_sweep.py --domain babies --out experiments/out/sweep \
        --setting ft method=ddpm-ft \
        --setting ds method=domainstudio l_img=1 l_hf=0.5 l_hfmse=0.05 \
        --setting ds_t500 method=domainstudio l_img=1 l_hf=0.5 l_hfmse=0.05 pairwise_max_t=500

Each setting adapts the pre-trained source model (``--source``, default models/faces/source from the main
workflow) on the domain's K-shot set with the training settings of params.yaml (overridable per setting:
steps=, lr=, batch_size=), draws ``--n`` DDIM samples and reports Intra-LPIPS on params.yaml's backbone, the mean
LPIPS from each sample to its nearest training image (low = copies) and the mean pairwise pixel MSE. This is how
the defaults and the sensitivity table in the README were obtained; it is not part of the workflow's DAG.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from domainstudio.adapt.methods import build_objective, method_weights
from domainstudio.adapt.objectives import DomainStudioOptions
from domainstudio.adapt.trainer import TrainConfig, train
from domainstudio.data.images import image_grid, load_image_folder
from domainstudio.metrics.embedded_backbone import EmbeddedBackbone
from domainstudio.metrics.evaluate import EvaluateConfig, evaluate_run
from domainstudio.metrics.lpips_embedding import squared_distances
from domainstudio.models.source import load_source
from domainstudio.sampling import SampleConfig, ddim_sample

WEIGHTS = ("l_img", "l_hf", "l_hfmse")
OPTIONS = tuple(f.name for f in dataclasses.fields(DomainStudioOptions))
TRAIN = tuple(f.name for f in dataclasses.fields(TrainConfig))


STRING_KEYS = ("method", "kl_direction", "hfmse_weighting", "haar", "pairwise_reduction")  # "none" is a value of these


def _value(key: str, text: str):
    """Strings for STRING_KEYS; otherwise null/none -> None, then an integer or a number."""
    if key in STRING_KEYS:
        return text
    if text.lower() in ("none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_setting(tokens: list[str]) -> tuple[str, dict]:
    name, values = tokens[0], {}
    for kv in tokens[1:]:
        key, value = kv.split("=", 1)
        values[key] = _value(key, value)
    return name, values


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domain", required=True); p.add_argument("--shots", type=int, default=10)
    p.add_argument("--source", default="models/faces/source"); p.add_argument("--world", default="faces")
    p.add_argument("--setting", nargs="+", action="append", required=True, metavar="NAME KEY=VALUE")
    p.add_argument("--n", type=int, default=300); p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True); p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    params = yaml.safe_load(open("params.yaml"))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    images = load_image_folder(f"data/{a.world}/{a.domain}/{a.shots}shot", params["resolution"], count=a.shots)
    embedding = EmbeddedBackbone.load(f"models/{a.world}/metric_backbone")
    reference = load_image_folder(f"data/{a.world}/{a.domain}/reference", params["resolution"])
    ref_stats = np.load(f"results/reference_stats/{a.world}/{a.domain}/embedded.npz")
    e_train = embedding(images)
    ev = params["evaluate"]
    eval_cfg = EvaluateConfig(cluster_cap=ev["cluster_cap"], max_samples=ev["lpips_samples"], seed=ev["seed"],
                              near_copy_quantile=ev["near_copy_quantile"])  # as the evaluate rule
    rows = []
    for tokens in a.setting:
        name, s = parse_setting(tokens)
        method = s.pop("method", "domainstudio")
        weights = method_weights(method, {**params["adapt"]["weights"], **{k: s.pop(k) for k in WEIGHTS if k in s}})
        options = {**params["adapt"].get("options", {}), **{k: (int(s.pop(k)) if k in ("pairwise_min_t", "pairwise_max_t") and s[k] is not None else s.pop(k)) for k in OPTIONS if k in s}}
        train_cfg = {**params["adapt"]["train"], "seed": a.seed, "checkpoint_every": 0}
        train_cfg.update({k: (int(v) if k in ("steps", "batch_size") else v) for k, v in s.items() if k in TRAIN})
        cfg = TrainConfig(**train_cfg)
        unet, sched = load_source(a.source)
        objective = build_objective(weights, unet, sched, cfg.batch_size, options)
        t0 = time.perf_counter()
        model = train(unet, images, objective, cfg, out / f"{name}.ckpt", "sweep", groups=objective.options.pairwise_groups or 1)
        t_train = time.perf_counter() - t0
        samples = ddim_sample(model, sched, SampleConfig(**{**params["sample"], "n_samples": a.n, "seed": a.seed}))
        image_grid(samples[:48], columns=12, scale=2).save(out / f"{name}.png")
        metrics = evaluate_run(samples, images, reference, ref_stats, eval_cfg, embedding, embedding.fid_features, embedding, a.domain)
        r, div = metrics["intra_lpips"], metrics["diversity"]
        e = embedding(samples)
        x = torch.from_numpy(samples[:200]).float().flatten(1) / 255
        row = {"setting": name, "domain": a.domain, "method": method, **dataclasses.asdict(weights), **options,
               "steps": cfg.steps, "lr": cfg.lr, "intra_lpips": round(r["intra_lpips"], 4), "std": round(r["std"], 4),
               "nearest_train_lpips": round(squared_distances(e, e_train).min(1).values.mean().item(), 4),
               "pixel_diversity": round(torch.cdist(x, x).pow(2).mean().item() / x.shape[1], 4),
               "near_copy": round(r["near_copy_fraction"], 3), "in_domain": round(div["in_domain"], 3),
               "factor_diversity": None if div["factor_diversity"] is None else round(div["factor_diversity"], 3),
               "fid": round(metrics["fid"]["fid"], 2),
               "largest_cluster": max(r["cluster_sizes"]), "train_s": round(t_train, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    with open(out / "sweep.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader(); writer.writerows(rows)
    comparison_figure(out, [r["setting"] for r in rows], {r["setting"]: r["intra_lpips"] for r in rows})


def comparison_figure(out: Path, names: list[str], scores: dict, per_row: int = 12) -> None:
    """One labelled row of samples per setting (the first row of each setting's grid.png)."""
    import numpy as np
    from PIL import Image

    from domainstudio.report.figures import labelled_grid

    rows = []
    for name in names:
        grid = np.asarray(Image.open(out / f"{name}.png").convert("RGB"))
        size = grid.shape[1] // 12  # grids are 12 columns wide
        rows.extend(grid[:size, c * size:(c + 1) * size][::2, ::2] for c in range(per_row))
    labels = [f"{n}\n{scores[n]:.3f}" if n in scores else n for n in names]
    labelled_grid(np.stack(rows), labels, per_row, out / "comparison.png")


if __name__ == "__main__":
    main()
