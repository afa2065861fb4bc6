"""Text-to-image DomainStudio vs DreamBooth on a tiny Stable Diffusion pre-trained here on the faces world (CPU).

    python experiments/t2i_tiny_faces.py --out experiments/out/t2i_faces --domain babies

The workflow's tiny pipeline has random weights (its images are noise). This experiment gives the same
architecture something to adapt: it renders the embedded source faces, trains the tiny pipeline's VAE on them,
then its UNet2DConditionModel in latent space with the caption "a face" (10% empty captions, for classifier-free
guidance; the CLIP text encoder stays random and frozen, as SD's text encoder stays frozen), and saves it as a
Stable Diffusion folder. Then it runs the text-to-image branch's own code (class images, ``train_t2i`` for
``dreambooth`` and ``domainstudio-t2i``, ``generate``) on the K-shot target set and reports Intra-LPIPS on
params.yaml's evaluate backbone plus the mean LPIPS from each sample to its nearest training image (low = copies).
Not part of the workflow's DAG; numbers and a figure go to --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from domainstudio.adapt.objectives import DomainStudioWeights
from domainstudio.data.images import image_grid, load_image_folder
from domainstudio.data.world import render_source, render_target
from domainstudio.metrics.intra_lpips import intra_lpips_from_embeddings
from domainstudio.metrics.lpips_embedding import LpipsEmbedding, squared_distances
from domainstudio.t2i.objective import T2IOptions
from domainstudio.t2i.pipeline import encode_prompt, load_t2i_pipeline, save_t2i_pipeline
from domainstudio.t2i.sampling import T2ISampleConfig, generate
from domainstudio.t2i.tiny import build_tiny_pipeline
from domainstudio.t2i.train import T2ITrainConfig, encode_latent_dist, to_pixels, train_t2i

ROOT = Path(__file__).resolve().parents[1]


def pretrain(out: Path, faces: np.ndarray, vae_steps: int, unet_steps: int, seed: int) -> None:
    """Train the tiny pipeline's VAE, then its UNet (caption "a face"), on the source faces; save at ``out``."""
    build_tiny_pipeline(out.with_name(out.name + "-random"), resolution=faces.shape[1], seed=seed)
    pipe = load_t2i_pipeline(out.with_name(out.name + "-random"))
    g = torch.Generator().manual_seed(seed)
    x_all = to_pixels(faces)
    vae = pipe.vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    t0 = time.time()
    for step in range(vae_steps):
        x = x_all[torch.randint(0, len(x_all), (32,), generator=g)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = F.mse_loss(rec, x) + 1e-5 * post.kl().mean()
        opt.zero_grad(); loss.backward(); opt.step()
        if step % 250 == 0:
            print(f"vae {step} {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    vae.eval().requires_grad_(False)
    mean, std = encode_latent_dist(vae, faces, torch.device("cpu"), chunk=256)
    vae.register_to_config(scaling_factor=float(1.0 / mean.std()))
    sf = vae.config.scaling_factor
    cond = torch.cat([encode_prompt(pipe, "a face", torch.device("cpu")), encode_prompt(pipe, "", torch.device("cpu"))])
    unet, sched = pipe.unet.train(), pipe.scheduler
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    for step in range(unet_steps):
        i = torch.randint(0, len(faces), (64,), generator=g)
        z0 = (mean[i] + std[i] * torch.randn(mean[i].shape, generator=g)) * sf
        t = torch.randint(0, sched.config.num_train_timesteps, (64,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        c = cond[(torch.rand(64, generator=g) < 0.1).long()]
        loss = F.mse_loss(unet(sched.add_noise(z0, noise, t), t, c).sample, noise)
        opt.zero_grad(); loss.backward(); opt.step()
        if step % 250 == 0:
            print(f"unet {step} {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    save_t2i_pipeline(pipe, unet.eval(), out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True); p.add_argument("--domain", default="babies"); p.add_argument("--shots", type=int, default=10)
    p.add_argument("--source-images", type=int, default=4000); p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--unet-steps", type=int, default=3000); p.add_argument("--adapt-steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-4); p.add_argument("--n", type=int, default=100)
    p.add_argument("--class-images", type=int, default=100); p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1); p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    t2i, ev = params["t2i"], params["evaluate"]
    if not (out / "data" / "source").exists():
        render_source("faces", out / "data" / "source", a.source_images, 32, 0)
    if not (out / "data" / a.domain).exists():
        render_target("faces", a.domain, out / "data" / a.domain, [a.shots], 10, 32, 0)
    model = out / "tiny-sd-faces"
    if not model.exists():
        pretrain(model, load_image_folder(out / "data" / "source", 32), a.vae_steps, a.unet_steps, a.seed)
    train_images = load_image_folder(out / "data" / a.domain / f"{a.shots}shot", 32, count=a.shots)
    sample_cfg = T2ISampleConfig(prompts=[t2i["instance_prompt"]], n_per_prompt=a.n, steps=25, guidance_scale=a.guidance, batch_size=100)
    classes, _ = generate(load_t2i_pipeline(model), T2ISampleConfig(**{**sample_cfg.__dict__, "prompts": [t2i["class_prompt"]],
                                                                     "n_per_prompt": a.class_images, "seed": 1000}), 32)
    if ev["backbone"] == "embedded":  # the released metric backbone of params.yaml
        from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

        embedding = EmbeddedBackbone.load(ev["embedded_backbone"], ev["resize"])
    else:
        embedding = LpipsEmbedding(ev["backbone"], resize=ev["resize"])
    e_train = embedding(train_images)
    rows, grids = [], {"training images": train_images, "class images (source, 'a face')": classes[:a.shots]}
    weights = {"dreambooth": DomainStudioWeights(), "domainstudio-t2i": DomainStudioWeights(**t2i["weights"])}
    for method, w in weights.items():
        t0 = time.time()
        pipe = load_t2i_pipeline(model)
        unet = train_t2i(pipe, train_images, classes, t2i["instance_prompt"], t2i["class_prompt"], w, T2IOptions(**t2i["options"]),
                         T2ITrainConfig(steps=a.adapt_steps, batch_size=4, lr=a.lr, seed=a.seed, log_every=50))
        pipe.unet = unet
        samples, _ = generate(pipe, sample_cfg, 32)
        e = embedding(samples)
        res = intra_lpips_from_embeddings(e, e_train, ev["cluster_cap"], ev["seed"])
        nearest = squared_distances(e, e_train).min(1).values.mean().item()
        rows.append({"method": method, "intra_lpips": round(res.intra_lpips, 4), "std": round(res.std, 4),
                     "nearest_train_lpips": round(nearest, 4), "largest_cluster": max(res.cluster_sizes),
                     "seconds": round(time.time() - t0)})
        print(rows[-1], flush=True)
        grids[f"{method} ('{t2i['instance_prompt']}')"] = samples[:a.shots]
    (out / "results.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2))
    labelled = np.concatenate(list(grids.values()))
    image_grid(labelled, columns=a.shots, scale=3).save(out / "samples.png")
    print("rows of samples.png:", list(grids))


if __name__ == "__main__":
    main()
