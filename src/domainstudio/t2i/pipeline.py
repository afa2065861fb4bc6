"""The Stable Diffusion pipeline as a diffusers folder: load from a local folder or a hub id, save, encode prompts.

Same contract as :mod:`domainstudio.models.source` for DDPMs: a local ``StableDiffusionPipeline.save_pretrained``
folder or a hub id found in the local cache (or the network); anything else stops with a message naming the
folder or id and the command that fetches it. Nothing else is ever substituted.
"""
from __future__ import annotations

from pathlib import Path

import torch

from domainstudio.models.source import SourceModelError

PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


class T2IModelError(SourceModelError):
    """The text-to-image pipeline cannot be loaded; the message says what to provide."""


def load_t2i_pipeline(name: str | Path):
    """A ``StableDiffusionPipeline`` (fp32, no safety checker) from a local folder or a hub id."""
    from diffusers import StableDiffusionPipeline

    path = Path(name)
    if path.exists():
        missing = [p for p in PIPELINE_PARTS if not (path / p).is_dir()]
        if missing or not (path / "model_index.json").exists():
            raise T2IModelError(
                f"{path} is not a diffusers Stable Diffusion folder: expected model_index.json and the subfolders "
                f"{list(PIPELINE_PARTS)} (missing: {missing or ['model_index.json']}); build one with "
                f"`domainstudio build-tiny-sd --out {path}` or download a checkpoint")
        try:
            pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, feature_extractor=None,
                                                           requires_safety_checker=False)
        except (OSError, ValueError, TypeError) as err:
            raise T2IModelError(f"cannot load the Stable Diffusion pipeline in {path}: {err}") from err
        return _epsilon_only(pipe, str(path))
    if str(name).startswith((".", "/")) or str(name).count("/") != 1:
        raise T2IModelError(f"t2i.pipeline {name!r}: no such local folder, and it is not a hub id of the form "
                            "'owner/name' (or 'tiny' for the offline test pipeline)")
    try:
        pipe = StableDiffusionPipeline.from_pretrained(str(name), safety_checker=None, feature_extractor=None,
                                                       requires_safety_checker=False)
    except Exception as err:  # offline, 404, gated: all mean the same here
        raise T2IModelError(
            f"cannot load Stable Diffusion pipeline {name!r} from the Hugging Face hub or its local cache "
            f"({type(err).__name__}). On a machine with network run `hf download {name} --local-dir "
            f"models/{Path(str(name)).name}` (add `--exclude '*.ckpt' '*.bin'` to skip duplicate weights) and set "
            f"t2i.pipeline to that folder.") from err
    return _epsilon_only(pipe, str(name))


def _epsilon_only(pipe, name: str):
    """Refuse, before any compute, a pipeline whose UNet does not predict the noise: the trainer's target and its
    predicted x0 (x_t - sqrt(1 - abar) eps) / sqrt(abar) assume epsilon; a v-prediction checkpoint (SD 2.x at
    768 px) would silently train against the wrong target."""
    prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise T2IModelError(f"{name}: the scheduler's prediction_type is {prediction!r}; the text-to-image branch trains "
                            "and forms x0 for 'epsilon' only (Stable Diffusion 1.x and SD 2.x base at 512 px)")
    return pipe


def save_t2i_pipeline(pipe, unet, out: str | Path) -> None:
    """Write ``pipe`` with ``unet`` in place of its UNet as a complete pipeline folder any diffusers user can load."""
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=unet,
                            scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(str(out))


@torch.no_grad()
def encode_prompt(pipe, prompt: str, device: torch.device) -> torch.Tensor:
    """The frozen text encoder's last hidden state (1 x 77 x d), padded as the pipeline pads at sampling time."""
    tok = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return pipe.text_encoder(tok.input_ids.to(device))[0]
