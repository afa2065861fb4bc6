"""The text-to-image verbs of the ``domainstudio`` command (registered by :func:`add_t2i_verbs`).

build-tiny-sd      the offline tiny Stable Diffusion folder
t2i-class-images   class-prior images from the source pipeline and the class prompt
t2i-adapt          DreamBooth / DomainStudio fine-tuning; writes a complete pipeline folder
t2i-sample         samples for a set of prompts: images/*.png, grid.png, sampling.json
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

log = logging.getLogger("domainstudio")


def _fields(cls, values: dict | None, where: str):
    values = dict(values or {})
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise SystemExit(f"error: unknown key(s) {unknown} in {where}; allowed: {sorted(f.name for f in dataclasses.fields(cls))}")
    return cls(**values)


def _threads(n):
    import torch

    if n:
        torch.set_num_threads(n)


def _thumbnails(images, size: int = 128):
    """Images larger than ``size`` px shrunk for the grid (a grid of 64 images at 512 px would be 4096 px wide)."""
    import numpy as np
    from PIL import Image

    if images.shape[1] <= size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.LANCZOS)) for im in images])


def _write_samples(images, record: dict, out) -> None:
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import image_grid, save_images

    with atomic_dir(out) as tmp:
        save_images(images, tmp / "images")
        image_grid(_thumbnails(images[:64]), columns=8, scale=max(1, 64 // images.shape[1])).save(tmp / "grid.png")
        (tmp / "sampling.json").write_text(json.dumps(record, indent=2))


def cmd_build_tiny_sd(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.t2i.tiny import build_tiny_pipeline

    with atomic_dir(a.out) as tmp:
        build_tiny_pipeline(tmp, resolution=a.resolution, seed=a.seed)


def cmd_t2i_class_images(a):
    from domainstudio.t2i.pipeline import load_t2i_pipeline
    from domainstudio.t2i.sampling import T2ISampleConfig, generate

    cfg = _fields(T2ISampleConfig, {**json.loads(a.config_json), "prompts": [a.prompt], "n_per_prompt": a.count,
                                    "seed": a.seed}, "t2i.sample")
    pipe = load_t2i_pipeline(a.pipeline)  # fails here, naming the id, before any work
    _threads(a.threads)
    images, _ = generate(pipe, cfg, a.resolution)
    _write_samples(images, {**dataclasses.asdict(cfg), "pipeline": str(a.pipeline), "resolution": a.resolution}, a.out)


def cmd_t2i_adapt(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import load_image_folder
    from domainstudio.t2i import T2I_METHODS
    from domainstudio.t2i.objective import DomainStudioWeights, T2IOptions
    from domainstudio.t2i.pipeline import load_t2i_pipeline, save_t2i_pipeline
    from domainstudio.t2i.train import T2ITrainConfig, train_t2i

    cfg = json.loads(a.config_json)
    allowed = {"train", "weights", "options", "instance_prompt", "class_prompt"}
    if set(cfg) - allowed:
        raise SystemExit(f"error: unknown key(s) {sorted(set(cfg) - allowed)} in t2i config; allowed: {sorted(allowed)}")
    if a.method not in T2I_METHODS:
        raise SystemExit(f"error: unknown text-to-image method {a.method!r}; known: {sorted(T2I_METHODS)}")
    train_cfg = _fields(T2ITrainConfig, cfg.get("train"), "t2i.train")
    options = _fields(T2IOptions, cfg.get("options"), "t2i.options")
    weights = _fields(DomainStudioWeights, cfg.get("weights") if T2I_METHODS[a.method] else {}, "t2i.weights")
    instance = load_image_folder(a.instance_images, a.resolution, count=a.shots)  # K images, upsampled (Lanczos)
    classes = load_image_folder(Path(a.class_images) / "images", a.resolution)
    pipe = load_t2i_pipeline(a.pipeline)
    _threads(a.threads)
    try:
        with atomic_dir(a.out) as tmp:
            unet = train_t2i(pipe, instance, classes, cfg["instance_prompt"], cfg["class_prompt"], weights, options,
                             train_cfg, log_csv=tmp / "train_log.csv")
            save_t2i_pipeline(pipe, unet, tmp)
            record = {"method": a.method, "shots": a.shots, "weights": dataclasses.asdict(weights),
                      "options": dataclasses.asdict(options), "train": dataclasses.asdict(train_cfg),
                      "instance_prompt": cfg["instance_prompt"], "class_prompt": cfg["class_prompt"],
                      "pipeline": str(a.pipeline), "instance_images": str(a.instance_images),
                      "class_images": str(a.class_images), "n_class_images": len(classes), "resolution": a.resolution}
            (tmp / "adaptation.json").write_text(json.dumps(record, indent=2))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def cmd_t2i_sample(a):
    from domainstudio.t2i.pipeline import load_t2i_pipeline
    from domainstudio.t2i.sampling import T2ISampleConfig, generate

    cfg = _fields(T2ISampleConfig, {**json.loads(a.config_json), **({"seed": a.seed} if a.seed is not None else {})}, "t2i.sample")
    pipe = load_t2i_pipeline(a.model)
    _threads(a.threads)
    images, prompt_of = generate(pipe, cfg, a.resolution)
    _write_samples(images, {**dataclasses.asdict(cfg), "model": str(a.model), "resolution": a.resolution,
                            "prompt_of_image": prompt_of}, a.out)


def add_t2i_verbs(verb) -> None:
    """Register the verbs with the CLI's ``verb(name, func, help)`` helper."""
    s = verb("build-tiny-sd", cmd_build_tiny_sd, "Build the tiny offline Stable Diffusion pipeline folder (tests, smoke run)")
    s.add_argument("--out", required=True); s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0)

    s = verb("t2i-class-images", cmd_t2i_class_images, "Class-prior images: the source pipeline's samples for the class prompt")
    s.add_argument("--pipeline", required=True, help="hub id or local Stable Diffusion folder"); s.add_argument("--prompt", required=True)
    s.add_argument("--count", type=int, required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", default="{}", help="sampling settings (t2i.sample without prompts) as JSON")
    s.add_argument("--seed", type=int, default=0); s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("t2i-adapt", cmd_t2i_adapt, "DreamBooth / DomainStudio text-to-image fine-tuning on K images")
    s.add_argument("--pipeline", required=True); s.add_argument("--instance-images", required=True)
    s.add_argument("--shots", type=int, required=True); s.add_argument("--class-images", required=True, help="a t2i-class-images folder")
    s.add_argument("--method", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", required=True, help='{"train", "weights", "options", "instance_prompt", "class_prompt"}')
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("t2i-sample", cmd_t2i_sample, "Samples of a text-to-image pipeline for a set of prompts")
    s.add_argument("--model", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", default="{}", help="the t2i.sample block as JSON"); s.add_argument("--seed", type=int)
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)
