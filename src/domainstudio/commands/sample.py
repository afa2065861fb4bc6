"""The sampling verb: DDIM (or ancestral) samples of a diffusion model as a PNG folder."""
from __future__ import annotations

import dataclasses
import json

from domainstudio.commands.stage_config import dataclass_from
from domainstudio.devices import set_threads


def cmd_sample(a):
    from domainstudio.data.images import write_sample_folder
    from domainstudio.devices import resolve_device, resolve_precision
    from domainstudio.models.source import load_source
    from domainstudio.sampling import SampleConfig, ddim_sample

    cfg = dataclass_from(SampleConfig, json.loads(a.config_json), "sample")
    if a.n_samples:
        cfg = dataclasses.replace(cfg, n_samples=a.n_samples)
    if a.seed is not None:
        cfg = dataclasses.replace(cfg, seed=a.seed)
    if cfg.source_above_t is not None and not a.source_model:
        raise SystemExit("error: sample.source_above_t is set but no --source-model was given")
    set_threads(a.threads)
    unet, scheduler = load_source(a.model)
    source = load_source(a.source_model)[0] if cfg.source_above_t is not None else None
    images = ddim_sample(unet, scheduler, cfg, source)
    write_sample_folder(images, {**dataclasses.asdict(cfg), "model": str(a.model), "source_model": a.source_model,
                                 "precision_used": resolve_precision(resolve_device(cfg.device), cfg.precision)}, a.out)


def add_verbs(verb) -> None:
    s = verb("sample", cmd_sample, "DDIM samples of a model, as PNGs plus grid.png")
    s.add_argument("--model", required=True); s.add_argument("--out", required=True)
    s.add_argument("--source-model", help="the source model, for sample.source_above_t")
    s.add_argument("--config-json", default="{}", help="the sample block of params.yaml as JSON")
    s.add_argument("--n-samples", type=int, help="override n_samples"); s.add_argument("--seed", type=int, help="override the seed")
    s.add_argument("--threads", type=int)
