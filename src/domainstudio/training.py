"""The one training loop of the diffusion family (source pre-training, every adaptation method, text-to-image) and
the pieces the GAN trainer shares with it: batch drawing, pixel conversion, checkpoint and resume.

A run (:func:`run_training`) resolves the device and precision before any compute, builds the caller's optimiser,
warms the learning rate up linearly and then keeps it constant, keeps an EMA of the weights (diffusers'
``EMAModel``) when ``ema_decay`` > 0, scales fp16 losses, draws everything from one seeded ``torch.Generator`` and
checkpoints every ``checkpoint_every`` steps: a killed run resumes to the same final weights as an uninterrupted
one, and since the learning rate is constant after warm-up, a run of N steps is the first N steps of a longer one.
The caller plugs in how a batch is drawn and the objective (the pattern of NVlabs/edm's training loop). Torch only:
the GAN trainer imports this module without diffusers.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from domainstudio.atomic import atomic_file
from domainstudio.devices import attention_kernel, autocast, grad_scaler, resolve_device, resolve_precision, scaled_step
from domainstudio.train_log import write_train_log

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """What :func:`run_training` reads; defaults are params.yaml's adapt.train, those it does not write in
    docs/workflow.md's "Defaults fixed in code" (tests/test_defaults.py)."""
    steps: int = 1000
    batch_size: int = 10
    lr: float = 1e-4
    warmup_steps: int = 0     # linear warm-up of the learning rate, then constant
    ema_decay: float = 0.0    # 0 disables EMA (the final raw weights are kept)
    grad_clip: float = 1.0    # gradient-norm clipping (0: none)
    precision: str = "auto"   # auto (bf16 where native, else fp32) | fp32 | bf16 (autocast) | fp16 (+ GradScaler; CUDA only)
    checkpoint_every: int = 100  # with a checkpoint file: the training state every this many steps (0: never)
    log_every: int = 1
    seed: int = 0
    device: str = "auto"


def to_pixels(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N x H x W x 3 array, or N x 3 x H x W tensor) -> float N x 3 x H x W in [-1, 1]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2) if isinstance(images, np.ndarray) else images
    return x.float() / 127.5 - 1.0


def uint8_nchw(images: np.ndarray) -> torch.Tensor:
    """A training set kept as uint8 N x 3 x H x W (a quarter of float32's memory); batches convert with to_pixels."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def draw_indices(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k indices into n items: without replacement when k <= n, with replacement otherwise."""
    return torch.randperm(n, generator=generator)[:k] if k <= n else torch.randint(0, n, (k,), generator=generator)


def pixel_batch(data: torch.Tensor, k: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """k training images of uint8 ``data`` (N x 3 x H x W) in [-1, 1], each flipped left-right with probability 1/2."""
    x = to_pixels(data[draw_indices(len(data), k, generator)])
    if hflip:
        flip = torch.rand(k, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def load_state(checkpoint: str | Path | None, fingerprint: str, steps: int, device: str | torch.device = "cpu") -> dict | None:
    """The training state saved in ``checkpoint`` when it belongs to this run (same ``fingerprint``: the caller's
    digest of everything but the number of steps) and is not past ``steps``; None otherwise."""
    if checkpoint is None or not Path(checkpoint).exists():
        return None
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if state.get("fingerprint") == fingerprint and state["step"] <= steps:
        log.warning("resuming from %s at step %d", checkpoint, state["step"])
        return state
    log.warning("ignoring checkpoint %s: it belongs to another configuration or is past %d steps", checkpoint, steps)
    return None


def save_state(checkpoint: str | Path, state: dict) -> None:
    """The training state, written atomically (a run killed while saving keeps the previous checkpoint)."""
    with atomic_file(checkpoint) as tmp:
        torch.save(state, tmp)


def on_step_end(step: int, steps: int, snapshot_every: int, snapshot, checkpoint_every: int, checkpoint) -> None:
    """The periodic saves after training step ``step``: ``snapshot()`` every ``snapshot_every`` steps and
    ``checkpoint()`` every ``checkpoint_every`` (not after the last step: the caller saves that state when it keeps
    it). A None callback or an interval of 0 is off."""
    if snapshot is not None and snapshot_every > 0 and step % snapshot_every == 0:
        snapshot()
    if checkpoint is not None and checkpoint_every > 0 and step % checkpoint_every == 0 and step < steps:
        checkpoint()


def run_training(model: torch.nn.Module, cfg: LoopConfig, draw_batch, objective, make_optimizer, checkpoint: str | Path | None = None,
                 fingerprint: str = "", log_csv: str | Path | None = None, save_snapshot=None, snapshot_every: int = 0,
                 keep_final_checkpoint: bool = False, cpu_math_attention: bool = False, desc: str = "train") -> torch.nn.Module:
    """Train ``model`` in place and return its final weights (the EMA's when ``cfg.ema_decay`` > 0) as a copy on the CPU.

    ``cfg``: a :class:`LoopConfig` (the trainers' configs extend it).
    ``draw_batch(generator, device)`` gives a step's batch, ``objective(model, batch, generator)`` its
    ``(loss, {term: float})``, ``make_optimizer(parameters)`` the optimiser. ``save_snapshot(model, step)`` is called
    every ``snapshot_every`` steps with the weights to keep. ``keep_final_checkpoint`` saves the state at the last
    step too, so that a later run with more steps continues this one. ``cpu_math_attention``: the math attention
    kernel on the CPU (:func:`domainstudio.devices.attention_kernel`)."""
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)  # before any compute
    log.info("training on %s in %s (precision: %s)", device, precision, cfg.precision)
    model.to(device).train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(parameters)
    warmup = max(cfg.warmup_steps, 1)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    ema = None
    if cfg.ema_decay > 0:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(parameters, decay=cfg.ema_decay)
    scaler = grad_scaler(device, precision)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # the global stream: dropout layers (DPMs-ANT's adaptors) draw from it
    step, rows, elapsed = 0, [], 0.0  # elapsed: training seconds, summed over resumed runs

    state = load_state(checkpoint, fingerprint, cfg.steps)
    if state is not None:
        model.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        generator.set_state(state["generator"])
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
            if state.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, rows, elapsed = state["step"], state["log"], state.get("elapsed", 0.0)

    def checkpoint_now():
        save_state(checkpoint, {"fingerprint": fingerprint, "step": step, "unet": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "lr_scheduler": lr_schedule.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None, "scaler": scaler.state_dict(), "log": rows, "elapsed": elapsed,
                                "config": vars(cfg).copy()})

    def weights():
        kept = copy.deepcopy(model).eval()
        if ema is not None:
            ema.copy_to([p for p in kept.parameters() if p.requires_grad])
        return kept

    bar = tqdm(total=cfg.steps, initial=step, desc=desc, mininterval=2.0)
    started = time.perf_counter() - elapsed
    while step < cfg.steps:
        batch = draw_batch(generator, device)
        with attention_kernel(device) if cpu_math_attention else contextlib.nullcontext(), autocast(device, precision):
            loss, terms = objective(model, batch, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
        grad_norm = scaled_step(loss, optimizer, scaler, parameters, cfg.grad_clip)
        lr_schedule.step()
        if ema is not None:
            ema.step(parameters)
        step += 1
        elapsed = time.perf_counter() - started
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, "elapsed_s": round(elapsed, 2), "loss": loss.item(), "grad_norm": float(grad_norm), **terms})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.update(1)
        on_step_end(step, cfg.steps, snapshot_every, save_snapshot and (lambda: save_snapshot(weights(), step)),
                    cfg.checkpoint_every, checkpoint and checkpoint_now)
    bar.close()
    if checkpoint is not None and keep_final_checkpoint:
        checkpoint_now()
    if log_csv is not None:
        write_train_log(rows, log_csv)
    return weights().cpu()
