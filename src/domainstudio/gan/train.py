"""One GAN training loop for source pre-training and every adaptation method (methods.py says what differs).

Alternating steps as in StyleGAN2: a discriminator step (logistic loss, lazy R1 every ``r1_every`` steps), then
a generator step (non-saturating loss plus the method's regulariser). Deterministic on CPU: network weights come
from ``torch.manual_seed(seed)`` and every draw (z, batches, flips) from one seeded ``torch.Generator`` on the CPU,
so a run on a GPU draws the same latents. Batches, pixel conversion and the checkpoint files are the diffusion loop's
(:mod:`domainstudio.training`). Source pre-training checkpoints every ``checkpoint_every`` steps and a killed run
resumes to the same weights as an uninterrupted one; it also saves (EMA) snapshots for a quality curve.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from domainstudio.devices import resolve_device
from domainstudio.train_log import write_train_log
from domainstudio.training import load_state, on_step_end, pixel_batch, save_state, uint8_nchw
from domainstudio.gan.losses import discriminator_loss, generator_loss, r1_penalty
from domainstudio.gan.methods import Adaptation

log = logging.getLogger(__name__)


@dataclass
class GanTrainConfig:
    """Defaults: params.yaml's gan.adapt, those it does not write in docs/workflow.md's "Defaults fixed in code"
    (tests/test_defaults.py); source pre-training passes gan.pretrain."""
    steps: int = 600
    batch_size: int = 8
    lr: float = 2e-3          # Adam(beta1=0, beta2=0.99) as StyleGAN2, for G and D
    r1_gamma: float = 0.05
    r1_every: int = 4         # lazy R1 (StyleGAN2 §B): the penalty, scaled by r1_every, every r1_every steps
    ema_decay: float = 0.0    # EMA of the generator's weights, with a warm-up (ema_decay_at; 0: the raw weights are kept)
    hflip: bool = True
    log_every: int = 50
    checkpoint_every: int = 0 # with a checkpoint file: save the training state this often (0: never)
    seed: int = 0
    device: str = "auto"      # auto: CUDA when present, else the CPU (devices.resolve_device)


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA decay after ``step`` steps: min(decay, (1 + step) / (10 + step)), a warm-up that keeps the
    average from remembering the random initial weights for ~1 / (1 - decay) steps (as diffusers' EMAModel)."""
    return min(decay, (1 + step) / (10 + step))


def train_gan(generator, discriminator, images: np.ndarray, cfg: GanTrainConfig, rule: Adaptation, rng: torch.Generator,
              log_csv=None, checkpoint: str | Path | None = None, fingerprint: str = "", snapshot_dir: str | Path | None = None,
              snapshot_every: int = 0, keep_final_checkpoint: bool = False):
    """Train ``generator`` and ``discriminator`` on uint8 images with ``rule``; return the generator to keep (its EMA
    when ``ema_decay`` > 0, on the CPU) and the training log rows.

    With ``checkpoint`` (a file that survives a killed run), the training state is saved every ``checkpoint_every``
    steps and reused when its ``fingerprint`` (the caller's digest of everything but the number of steps) matches
    and it is not past ``cfg.steps``: the learning rate is constant, so a finished training continues when
    ``steps`` grows. Every ``snapshot_every`` steps the kept generator is saved as a GAN folder
    ``snapshot_dir/step<N>`` (with the discriminator), for a quality curve. ``keep_final_checkpoint`` also saves the
    state at the last step, so that a later run with more steps continues this one."""
    from domainstudio.gan.artifact import save_gan

    device = resolve_device(cfg.device)
    log.info("training the GAN on %s", device)
    generator.to(device), discriminator.to(device)
    rule.to(device)
    data = uint8_nchw(images)
    g_params = [p for p in generator.parameters() if p.requires_grad]
    d_params = rule.discriminator_parameters(discriminator)
    g_opt = torch.optim.Adam(g_params, lr=cfg.lr, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(d_params, lr=cfg.lr, betas=(0.0, 0.99))
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    generator.train(), discriminator.train()
    step, rows, elapsed = 0, [], 0.0  # elapsed: training seconds, summed over resumed runs
    state = load_state(checkpoint, fingerprint, cfg.steps, device)
    if state is not None:
        generator.load_state_dict(state["generator"]), discriminator.load_state_dict(state["discriminator"])
        g_opt.load_state_dict(state["g_opt"]), d_opt.load_state_dict(state["d_opt"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        rng.set_state(state["rng"])
        step, rows, elapsed = state["step"], state["log"], state["elapsed"]

    def save_checkpoint():
        save_state(checkpoint, {"fingerprint": fingerprint, "step": step, "generator": generator.state_dict(),
                                "discriminator": discriminator.state_dict(), "g_opt": g_opt.state_dict(), "d_opt": d_opt.state_dict(),
                                "ema": ema.state_dict() if ema is not None else None, "rng": rng.get_state(), "log": rows,
                                "elapsed": elapsed, "config": asdict(cfg)})

    def save_snapshot():
        folder = Path(snapshot_dir) / f"step{step}"
        folder.mkdir(parents=True, exist_ok=True)
        save_gan(folder, kept(), copy.deepcopy(discriminator).cpu())

    def kept():
        return copy.deepcopy(ema if ema is not None else generator).cpu().eval().requires_grad_(False)

    def on_device(x):
        return x.to(device, non_blocking=True)

    bar = tqdm(total=cfg.steps, initial=step, desc="gan", mininterval=2.0)
    started = time.perf_counter() - elapsed
    while step < cfg.steps:
        # Discriminator step.
        z, patch = rule.latents(step, cfg.batch_size, rng)
        with torch.no_grad():
            fake = generator(on_device(z))
        real = on_device(pixel_batch(data, cfg.batch_size, cfg.hflip, rng))
        d_loss = discriminator_loss(discriminator(real, patch=patch), discriminator(fake, patch=patch))
        terms = {"d_loss": d_loss.item()}
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
            r1 = r1_penalty(discriminator, real, patch=rule.r1_on_patches(patch))
            d_loss = d_loss + cfg.r1_gamma / 2 * cfg.r1_every * r1
            terms["r1"] = r1.item()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()

        # Generator step (the discriminator's weights take no gradient here).
        for p in d_params:
            p.requires_grad_(False)
        z, patch = rule.latents(step, cfg.batch_size, rng)
        g_loss = generator_loss(discriminator(generator(on_device(z)), patch=patch))
        terms["g_loss"] = g_loss.item()
        extra, extra_terms = rule.generator_regulariser(generator, rng)
        if extra is not None:
            g_loss = g_loss + extra
            terms.update(extra_terms)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        for p in d_params:
            p.requires_grad_(True)
        if not all(np.isfinite(v) for v in terms.values()):
            raise FloatingPointError(f"non-finite GAN loss at step {step}: {terms}")
        if ema is not None:
            decay = ema_decay_at(step, cfg.ema_decay)
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), generator.parameters()):
                    pe.lerp_(p, 1 - decay)
        step += 1
        elapsed = time.perf_counter() - started
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, "elapsed_s": round(elapsed, 2), **terms})
        bar.update(1)
        on_step_end(step, cfg.steps, snapshot_every, snapshot_dir and save_snapshot, cfg.checkpoint_every, checkpoint and save_checkpoint)
    bar.close()
    if checkpoint is not None and keep_final_checkpoint:
        save_checkpoint()
    if log_csv is not None:
        write_train_log(rows, log_csv)
    discriminator.cpu()
    generator.cpu()
    return kept(), rows
