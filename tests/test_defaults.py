"""One source of defaults: every settings dataclass's defaults are params.yaml's values for its block, and the
names the workflow's schema accepts (methods, option choices) are the ones the code defines."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from domainstudio.adapt.ant import AntOptions
from domainstudio.adapt.domain_classifier import ClassifierConfig
from domainstudio.adapt.losses import HAAR_CONVENTIONS
from domainstudio.adapt.methods import DIFFUSION_METHODS
from domainstudio.adapt.objectives import HFMSE_WEIGHTINGS, DomainStudioOptions
from domainstudio.adapt.trainer import TrainConfig
from domainstudio.gan.methods import GAN_METHODS, CdcConfig, EwcConfig, FreezeDConfig
from domainstudio.gan.networks import GanNetworkConfig
from domainstudio.gan.train import GanTrainConfig
from domainstudio.metrics.embedded_backbone import BackboneTrainConfig
from domainstudio.metrics.evaluate import EvaluateConfig
from domainstudio.metrics.two_sample import TwoSampleConfig
from domainstudio.models.adaptor import AdaptorConfig
from domainstudio.models.source import SchedulerConfig, UNetConfig
from domainstudio.registry import ANT_METHODS, KL_DIRECTIONS, METHOD_FAMILIES, PAIRWISE_REDUCTIONS
from domainstudio.release.quality_curve import SourceQualityConfig
from domainstudio.sampling import SAMPLERS, SampleConfig
from domainstudio.t2i import T2I_METHODS
from domainstudio.t2i.objective import PAIRWISE_REFERENCES, T2IOptions
from domainstudio.t2i.sampling import T2ISampleConfig
from domainstudio.t2i.train import T2ITrainConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/params.schema.yaml").read_text())

# (dataclass, block of params.yaml, params keys that are not fields: read by the workflow, not by the class).
# TrainConfig and GanTrainConfig serve pre-training too; their defaults are the adaptation blocks', and the
# pre-training blocks (source.train, gan.pretrain) give every value they change.
BLOCKS = [
    (TrainConfig, "adapt.train", ()),
    (DomainStudioOptions, "adapt.options", ()),
    (SampleConfig, "sample", ()),
    (UNetConfig, "source.unet", ()),
    (SchedulerConfig, "source.scheduler", ()),
    (SourceQualityConfig, "source.quality", ("snapshot_every",)),
    (BackboneTrainConfig, "evaluate.backbone_train", ()),
    (TwoSampleConfig, "evaluate.c2st", ()),
    (GanNetworkConfig, "gan.network", ()),
    (GanTrainConfig, "gan.adapt", ()),
    (EwcConfig, "gan.methods.ewc", ()),
    (CdcConfig, "gan.methods.cdc", ()),
    (FreezeDConfig, "gan.methods.freezed", ()),
    (T2ITrainConfig, "t2i.train", ()),
    (T2IOptions, "t2i.options", ()),
    (T2ISampleConfig, "t2i.sample", ()),
    (AntOptions, "adapt.ant.options", ()),
    (AdaptorConfig, "adapt.ant.adaptor", ()),
    (ClassifierConfig, "adapt.ant.classifier", ()),
]


def block(path: str) -> dict:
    value = PARAMS
    for key in path.split("."):
        value = value[key]
    return value


def defaults(cls) -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls, path, workflow_keys", BLOCKS, ids=[p for _, p, _ in BLOCKS])
def test_dataclass_defaults_are_the_params_values(cls, path, workflow_keys):
    values, own = block(path), defaults(cls)
    unknown = sorted(set(values) - set(own) - set(workflow_keys))
    assert not unknown, f"params.yaml {path} has keys {unknown} that {cls.__name__} does not know"
    disagree = {k: (own[k], v) for k, v in values.items() if k in own and (list(own[k]) if isinstance(own[k], tuple) else own[k]) != v}
    assert not disagree, f"{cls.__name__} defaults (left) disagree with params.yaml {path} (right): {disagree}"


def test_evaluate_defaults_are_the_params_values():
    ev, own = PARAMS["evaluate"], defaults(EvaluateConfig)
    assert (own["cluster_cap"], own["max_samples"], own["seed"], own["near_copy_quantile"], own["prdc_k"]) == (
        ev["cluster_cap"], ev["lpips_samples"], ev["seed"], ev["near_copy_quantile"], ev["prdc_k"])
    assert own["c2st"] == TwoSampleConfig()  # its values: the evaluate.c2st block above


def enum(*path):
    """The enum at a path of params.schema.yaml's properties, following $refs (and array items)."""
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node["enum"] if "enum" in node else node["items"]["enum"]


def test_method_names_are_defined_once():
    assert enum("methods") == list(METHOD_FAMILIES)
    assert sorted([*DIFFUSION_METHODS, *ANT_METHODS]) == sorted(m for m, f in METHOD_FAMILIES.items() if f == "ddpm")
    assert list(GAN_METHODS) == [m for m, f in METHOD_FAMILIES.items() if f == "gan"]
    assert enum("t2i", "methods") == list(T2I_METHODS)


def test_schema_choices_are_the_codes_choices():
    assert enum("adapt", "options", "kl_direction") == list(KL_DIRECTIONS)
    assert enum("adapt", "options", "pairwise_reduction") == list(PAIRWISE_REDUCTIONS)
    assert enum("adapt", "options", "hfmse_weighting") == list(HFMSE_WEIGHTINGS)
    assert enum("adapt", "options", "haar") == list(HAAR_CONVENTIONS)
    assert enum("t2i", "options", "pairwise_reference") == list(PAIRWISE_REFERENCES)
    assert enum("t2i", "options", "kl_direction") == list(KL_DIRECTIONS)
    assert enum("t2i", "options", "pairwise_reduction") == list(PAIRWISE_REDUCTIONS)
    assert enum("t2i", "options", "haar") == list(HAAR_CONVENTIONS)
    assert enum("t2i", "options", "hfmse_weighting") == list(HFMSE_WEIGHTINGS)
    assert enum("sample", "sampler") == list(SAMPLERS)
