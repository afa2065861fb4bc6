"""The text-to-image verbs of the ``domainstudio`` command (registered by :func:`add_verbs`).

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

from domainstudio.commands.stage_config import config_blocks, dataclass_from
from domainstudio.data.images import write_sample_folder
from domainstudio.devices import set_threads
from domainstudio.fingerprint import digest, model_digest, resume_key

log = logging.getLogger("domainstudio")


def cmd_build_tiny_sd(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.t2i.tiny import build_tiny_pipeline

    with atomic_dir(a.out) as tmp:
        build_tiny_pipeline(tmp, resolution=a.resolution, seed=a.seed)


def cmd_t2i_class_images(a):
    from domainstudio.t2i.pipeline import load_t2i_pipeline
    from domainstudio.t2i.sampling import T2ISampleConfig, generate

    cfg = dataclass_from(T2ISampleConfig, {**json.loads(a.config_json), "prompts": [a.prompt], "n_per_prompt": a.count,
                                    "seed": a.seed}, "t2i.sample")
    pipe = load_t2i_pipeline(a.pipeline)  # fails here, naming the id, before any work
    set_threads(a.threads)
    images, _ = generate(pipe, cfg, a.resolution)
    write_sample_folder(images, {**dataclasses.asdict(cfg), "pipeline": str(a.pipeline), "resolution": a.resolution}, a.out)


def cmd_t2i_adapt(a):
    from domainstudio.atomic import atomic_dir
    from domainstudio.data.images import load_image_folder
    from domainstudio.t2i import T2I_METHODS
    from domainstudio.t2i.objective import DomainStudioWeights, T2IOptions
    from domainstudio.t2i.pipeline import load_t2i_pipeline, save_t2i_pipeline
    from domainstudio.t2i.train import T2ITrainConfig, train_t2i

    cfg = config_blocks(a.config_json, {"train", "weights", "options", "instance_prompt", "class_prompt"}, "t2i config")
    if a.method not in T2I_METHODS:
        raise SystemExit(f"error: unknown text-to-image method {a.method!r}; known: {sorted(T2I_METHODS)}")
    train_cfg = dataclass_from(T2ITrainConfig, cfg.get("train"), "t2i.train")
    options = dataclass_from(T2IOptions, cfg.get("options"), "t2i.options")
    weights = dataclass_from(DomainStudioWeights, cfg.get("weights") if T2I_METHODS[a.method] else {}, "t2i.weights")
    instance = load_image_folder(a.instance_images, a.resolution, count=a.shots)  # K images, upsampled (Lanczos)
    classes = load_image_folder(Path(a.class_images) / "images", a.resolution)
    pipe = load_t2i_pipeline(a.pipeline)
    set_threads(a.threads)
    fingerprint = digest(resume_key(cfg), a.method, a.shots, instance, classes, str(a.pipeline),
                         model_digest(Path(a.pipeline)) if Path(a.pipeline).is_dir() else "")
    try:
        with atomic_dir(a.out) as tmp:
            unet = train_t2i(pipe, instance, classes, cfg["instance_prompt"], cfg["class_prompt"], weights, options,
                             train_cfg, log_csv=tmp / "train_log.csv", checkpoint=a.checkpoint, fingerprint=fingerprint)
            save_t2i_pipeline(pipe, unet, tmp)
            record = {"method": a.method, "shots": a.shots, "weights": dataclasses.asdict(weights),
                      "options": dataclasses.asdict(options), "train": dataclasses.asdict(train_cfg),
                      "instance_prompt": cfg["instance_prompt"], "class_prompt": cfg["class_prompt"],
                      "pipeline": str(a.pipeline), "instance_images": str(a.instance_images),
                      "class_images": str(a.class_images), "n_class_images": len(classes), "resolution": a.resolution}
            (tmp / "adaptation.json").write_text(json.dumps(record, indent=2))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if a.checkpoint:
        Path(a.checkpoint).unlink(missing_ok=True)  # the adapted pipeline is complete


def cmd_t2i_sample(a):
    from domainstudio.t2i.pipeline import load_t2i_pipeline
    from domainstudio.t2i.sampling import T2ISampleConfig, generate

    cfg = dataclass_from(T2ISampleConfig, {**json.loads(a.config_json), **({"seed": a.seed} if a.seed is not None else {})}, "t2i.sample")
    pipe = load_t2i_pipeline(a.model)
    set_threads(a.threads)
    images, prompt_of = generate(pipe, cfg, a.resolution)
    write_sample_folder(images, {**dataclasses.asdict(cfg), "model": str(a.model), "resolution": a.resolution,
                            "prompt_of_image": prompt_of}, a.out)


def add_verbs(verb) -> None:
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
    s.add_argument("--checkpoint", help="file for the training state, every t2i.train.checkpoint_every steps (a killed run resumes)")
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)

    s = verb("t2i-sample", cmd_t2i_sample, "Samples of a text-to-image pipeline for a set of prompts")
    s.add_argument("--model", required=True); s.add_argument("--resolution", type=int, required=True)
    s.add_argument("--config-json", default="{}", help="the t2i.sample block as JSON"); s.add_argument("--seed", type=int)
    s.add_argument("--out", required=True); s.add_argument("--threads", type=int)
