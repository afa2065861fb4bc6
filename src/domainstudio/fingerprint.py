"""Fingerprints of a training's inputs: a resumable checkpoint is reused only by the run it belongs to."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def digest(*parts) -> str:
    """sha256 over bytes, arrays (their bytes) and JSON-able values, in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray)):
            h.update(part)
        elif hasattr(part, "tobytes"):
            h.update(part.tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def model_digest(folder: Path) -> str:
    """sha256 over a model folder's relative file names and contents."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file():
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def resume_key(cfg: dict, block: str = "train") -> dict:
    """A stage config without what a resumed run may change: the number of steps (the trainers continue a shorter
    run, their learning rates being constant after warm-up), how often they checkpoint and log, and the device."""
    train = {k: v for k, v in cfg.get(block, {}).items() if k not in ("steps", "checkpoint_every", "log_every", "device")}
    return {**cfg, block: train}
