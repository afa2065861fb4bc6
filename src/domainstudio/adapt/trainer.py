"""One diffusion trainer for source pre-training and every adaptation method.

Seeded and deterministic on CPU (all randomness comes from one ``torch.Generator`` whose state is
checkpointed), EMA of the weights (diffusers ``EMAModel``), checkpoints every N steps, and a run that is
killed resumes from its last checkpoint to the same final weights as an uninterrupted run.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from domainstudio.atomic import atomic_file
from domainstudio.devices import attention_kernel, autocast, grad_scaler, resolve_device, resolve_precision, scaled_step  # noqa: F401 (re-exported)
from domainstudio.train_log import write_train_log

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 0
    ema_decay: float = 0.999  # 0 disables EMA (the final raw weights are saved)
    grad_clip: float = 1.0
    hflip: bool = True
    precision: str = "auto"  # auto (bf16 where native, else fp32) | fp32 | bf16 (autocast) | fp16 (+ GradScaler; CUDA only)
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    device: str = "auto"


def _batch(images: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A batch of training images in [-1, 1]: without replacement when the set is large enough."""
    n = images.shape[0]
    if cfg.batch_size <= n:
        idx = torch.randperm(n, generator=generator)[: cfg.batch_size]
    else:
        idx = torch.randint(0, n, (cfg.batch_size,), generator=generator)
    x0 = images[idx].float() / 127.5 - 1.0
    if cfg.hflip:
        flip = torch.rand(cfg.batch_size, generator=generator) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
    return x0


def train(unet, images: np.ndarray, objective, cfg: TrainConfig, checkpoint: str | Path, fingerprint: str, log_csv: str | Path | None = None,
          snapshot_dir: str | Path | None = None, snapshot_every: int = 0, keep_final_checkpoint: bool = False):
    """Train ``unet`` on uint8 images (N x H x W x 3) with ``objective``; return the final (EMA) UNet.

    ``checkpoint`` is a file that survives a killed run; it is reused only when its ``fingerprint``
    (the caller's digest of config, data and source model, without the number of steps) matches and it is not
    past ``cfg.steps``: the learning rate is constant after warm-up, so a run of N steps is the first N steps of a
    longer one, and a finished training can be continued by raising ``steps``. Every ``snapshot_every`` steps the
    (EMA) weights are saved as a diffusers UNet folder ``snapshot_dir/step<N>`` (a quality curve is measured on them).
    With ``keep_final_checkpoint`` the state at the last step is saved too, so that a later run with more steps
    continues this one (source pre-training); otherwise the caller removes the checkpoint once the model is written.
    """
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)  # before any compute
    log.info("training on %s in %s (precision: %s)", device, precision, cfg.precision)
    checkpoint = Path(checkpoint)
    unet.to(device).train()
    data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    # fused: one kernel for all tensors instead of a loop over them (benchmarks/train_step.py)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0, fused=True)
    warmup = max(cfg.warmup_steps, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    ema = EMAModel(unet.parameters(), decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
    scaler = grad_scaler(device, precision)
    generator = torch.Generator().manual_seed(cfg.seed)
    step, rows, elapsed = 0, [], 0.0  # elapsed: training seconds, summed over resumed runs

    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint and state["step"] <= cfg.steps:
            unet.load_state_dict(state["unet"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["lr_scheduler"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            generator.set_state(state["generator"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            step, rows, elapsed = state["step"], state["log"], state.get("elapsed", 0.0)
            log.warning("resuming from %s at step %d", checkpoint, step)
        else:
            log.warning("ignoring checkpoint %s: it belongs to another configuration or is past %d steps", checkpoint, cfg.steps)

    def save_checkpoint():
        with atomic_file(checkpoint) as tmp:
            torch.save({"fingerprint": fingerprint, "step": step, "unet": unet.state_dict(), "optimizer": optimizer.state_dict(),
                        "lr_scheduler": scheduler.state_dict(), "ema": ema.state_dict() if ema is not None else None,
                        "generator": generator.get_state(), "scaler": scaler.state_dict(), "log": rows, "elapsed": elapsed,
                        "config": asdict(cfg)}, tmp)

    def weights():
        model = copy.deepcopy(unet).eval()
        if ema is not None:
            ema.copy_to(model.parameters())
        return model

    bar = tqdm(total=cfg.steps, initial=step, desc="train", mininterval=2.0)
    started = time.perf_counter() - elapsed
    while step < cfg.steps:
        x0 = _batch(data, cfg, generator).to(device)
        with attention_kernel(device), autocast(device, precision):
            loss, terms = objective(unet, x0, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
        grad_norm = scaled_step(loss, optimizer, scaler, unet.parameters(), cfg.grad_clip)
        scheduler.step()
        if ema is not None:
            ema.step(unet.parameters())
        step += 1
        elapsed = time.perf_counter() - started
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, "elapsed_s": round(elapsed, 2), "loss": loss.item(), "grad_norm": float(grad_norm), **terms})
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.update(1)
        if snapshot_dir is not None and snapshot_every > 0 and step % snapshot_every == 0:
            weights().save_pretrained(Path(snapshot_dir) / f"step{step}")
        if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 and step < cfg.steps:
            save_checkpoint()
    bar.close()
    if keep_final_checkpoint:
        save_checkpoint()

    final = weights()
    if log_csv is not None:
        write_train_log(rows, log_csv)
    return final.cpu()
