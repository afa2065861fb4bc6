"""A tiny Stable Diffusion pipeline built from configs, with no download: the offline stand-in for tests and CI.

Every part is a real diffusers/transformers class (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
CLIPTokenizer, DDPMScheduler with SD's scaled-linear betas), only small and randomly initialised; the
tokenizer's byte-level BPE vocabulary and merges are written here. Its images are noise-like: it checks that
the text-to-image branch runs and connects, not what it produces.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

# Words that get whole-word BPE tokens (everything else falls back to single characters, as in CLIP).
TINY_WORDS = ("a", "sks", "face", "photo", "of", "the", "in", "style", "person", "smiling", "portrait", "with")


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tiny_tokenizer(folder: str | Path, words=TINY_WORDS) -> None:
    """vocab.json and merges.txt of a CLIP byte-level BPE tokenizer: every byte (alone and word-final) plus the
    left-to-right merges that make each of ``words`` one token."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = _bytes_to_unicode()
    vocab = base + [c + "</w>" for c in base]
    merges = []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            merged = pair[0] + pair[1]
            if pair not in merges:
                merges.append(pair)
            if merged not in vocab:
                vocab.append(merged)
            parts = [merged] + parts[2:]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")


def build_tiny_pipeline(out: str | Path, resolution: int = 32, seed: int = 0) -> None:
    """Save a tiny ``StableDiffusionPipeline`` folder at ``out`` (VAE factor 4: ``resolution`` / 4 latents)."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if resolution % 8:
        raise ValueError(f"resolution {resolution}: Stable Diffusion pipelines need a multiple of 8")
    out = Path(out)
    tok_dir = out.parent / f".{out.name}.tokenizer-src"
    write_tiny_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    for f in tok_dir.iterdir():
        f.unlink()
    tok_dir.rmdir()
    torch.manual_seed(seed)
    width = 32
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=8,
        sample_size=resolution)
    unet = UNet2DConditionModel(
        sample_size=resolution // 4, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=width, attention_head_dim=8, norm_num_groups=8)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(str(out))
