"""What the benchmark scripts share: the source UNet they time."""
from __future__ import annotations

import torch
import yaml

from domainstudio.models.source import SchedulerConfig, UNetConfig, build_scheduler, build_unet, load_source


def source_model(model: str | None, params_file: str = "params.yaml"):
    """(unet, scheduler, params): the model folder ``model``, or params.yaml's source.unet with random weights
    (a step costs the same whatever the weights)."""
    params = yaml.safe_load(open(params_file))
    if model:
        unet, sched = load_source(model)
    else:
        torch.manual_seed(0)
        unet = build_unet(UNetConfig(**params["source"]["unet"]), params["resolution"])
        sched = build_scheduler(SchedulerConfig(**params["source"]["scheduler"]))
    return unet, sched, params
