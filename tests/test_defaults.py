"""One source of defaults, checked in both directions. Every key of params.yaml is a field of the settings dataclass
that reads it, with that dataclass's default, or a key the workflow reads itself; every default that params.yaml could
set (its schema accepts the key) is either written there or listed in docs/workflow.md's "Defaults fixed in code"
table, with the same value and the class that defines it (the table is read here, so the two cannot drift). The names
the workflow's schema accepts (methods, option choices) are the ones the code defines."""
from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import yaml

from domainstudio.adapt.ant import AntOptions
from domainstudio.adapt.domain_classifier import ClassifierConfig
from domainstudio.adapt.losses import HAAR_CONVENTIONS
from domainstudio.adapt.methods import DIFFUSION_METHODS
from domainstudio.adapt.objectives import HFMSE_WEIGHTINGS, DomainStudioOptions, DomainStudioWeights
from domainstudio.adapt.trainer import TrainConfig
from domainstudio.gan.methods import GAN_METHODS, CdcConfig, EwcConfig, FreezeDConfig
from domainstudio.gan.networks import GanNetworkConfig
from domainstudio.gan.train import GanTrainConfig
from domainstudio.metrics.calibration import CalibrationConfig
from domainstudio.metrics.embedded_backbone import BackboneTrainConfig
from domainstudio.metrics.evaluate import EvaluateConfig
from domainstudio.metrics.sliced_wasserstein import SlicedWassersteinConfig
from domainstudio.metrics.two_sample import TwoSampleConfig
from domainstudio.models.adaptor import AdaptorConfig
from domainstudio.models.adm import AdmFlags
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
DOCS = ROOT / "docs/workflow.md"
TABLE_HEADING = "### Defaults fixed in code"


@dataclasses.dataclass(frozen=True)
class Block:
    """A block of params.yaml that a settings dataclass reads whole."""
    cls: type
    path: str
    workflow_keys: tuple[str, ...] = ()  # keys of the block that the workflow reads itself, or blocks of their own
    set_elsewhere: tuple[str, ...] = ()  # fields the block does not set: the workflow sets them (the {seed} wildcard,
    #                                      evaluate.seed), a block of their own gives them, or they do not apply
    renames: tuple[tuple[str, str], ...] = ()  # (params key, field) where the two names differ

    def field_of(self, key: str) -> str:
        return dict(self.renames).get(key, key)

    def key_of(self, name: str) -> str:
        return {f: k for k, f in self.renames}.get(name, name)


BLOCKS = [
    Block(TrainConfig, "adapt.train", set_elsewhere=("seed",)),
    Block(DomainStudioOptions, "adapt.options"),
    Block(SampleConfig, "sample", set_elsewhere=("seed",)),
    Block(UNetConfig, "source.unet"),
    Block(SchedulerConfig, "source.scheduler"),
    Block(AdmFlags, "source.adm"),  # absent from params.yaml: only a guided-diffusion checkpoint reads it
    Block(SourceQualityConfig, "source.quality", workflow_keys=("snapshot_every",)),
    Block(SourceQualityConfig, "gan.quality", workflow_keys=("snapshot_every",), set_elsewhere=("ddim_steps",)),  # a GAN samples in one step
    Block(EvaluateConfig, "evaluate", set_elsewhere=("c2st", "swd"), renames=(("lpips_samples", "max_samples"),),
          workflow_keys=("backbone", "fid_backbone", "embedded_backbone", "resize", "c2st", "swd", "calibration", "backbone_train")),
    Block(BackboneTrainConfig, "evaluate.backbone_train"),
    Block(TwoSampleConfig, "evaluate.c2st", set_elsewhere=("seed",)),
    Block(SlicedWassersteinConfig, "evaluate.swd", set_elsewhere=("seed",)),
    Block(CalibrationConfig, "evaluate.calibration"),
    Block(GanNetworkConfig, "gan.network"),
    Block(GanTrainConfig, "gan.adapt", set_elsewhere=("seed",)),
    Block(EwcConfig, "gan.methods.ewc"),
    Block(CdcConfig, "gan.methods.cdc"),
    Block(FreezeDConfig, "gan.methods.freezed"),
    Block(T2ITrainConfig, "t2i.train", set_elsewhere=("seed",)),
    Block(T2IOptions, "t2i.options"),
    Block(T2ISampleConfig, "t2i.sample", set_elsewhere=("seed",)),
    Block(AntOptions, "adapt.ant.options"),
    Block(AdaptorConfig, "adapt.ant.adaptor"),
    Block(ClassifierConfig, "adapt.ant.classifier"),
]
# Blocks that change defaults on purpose and give only what they change: the pre-trainings (TrainConfig and
# GanTrainConfig default to the adaptation blocks' values), the paper's and the released code's settings, DPMs-ANT's
# training, and the weights of DomainStudio's terms (the dataclass's 0 is a term switched off; each method switches on
# its own). Every key is a field.
PARTIAL_BLOCKS = [
    (TrainConfig, "source.train"), (TrainConfig, "adapt.official.train"), (TrainConfig, "adapt.ant.train"),
    (GanTrainConfig, "gan.pretrain"), (SampleConfig, "adapt.official.sample"),
    (DomainStudioOptions, "adapt.paper.options"), (DomainStudioOptions, "adapt.official.options"),
    (DomainStudioWeights, "adapt.weights"), (DomainStudioWeights, "adapt.paper.weights"),
    (DomainStudioWeights, "adapt.official.weights"), (DomainStudioWeights, "t2i.weights"),
]
# Keys the rules read themselves (which runs, paths, backbones, the t2i branch's runs); the schema gives each.
WORKFLOW_KEYS = ["overlays", "world", "resolution", "domains", "shots", "methods", "seeds", "extra_seeds", "data", "source.kind",
                 "source.pretrained", "report", "t2i.enabled", "t2i.pipeline", "t2i.resolution", "t2i.domains",
                 "t2i.shots", "t2i.methods", "t2i.seeds", "t2i.instance_prompt", "t2i.class_prompt", "t2i.class_images",
                 "gan.pretrained", "gan.sample"]
# Defaults that are not parameters at all (the schema refuses them), with the page that states each.
NOT_PARAMETERS = [(EvaluateConfig, "near_copy_reference", 500, "docs/metrics.md")]
# Dataclasses that are not settings: batches and results.
NOT_SETTINGS = {"NoisedBatch", "T2IBatch", "IntraLpipsResult", "Measure"}
ABSENT = object()  # a key params.yaml does not write


def written(path: str):
    """The value at a dotted path of params.yaml, or ABSENT."""
    value = PARAMS
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return ABSENT
        value = value[key]
    return value


def block(path: str) -> dict:
    """A block of params.yaml by its dotted path ({} where params.yaml does not write it)."""
    value = written(path)
    return {} if value is ABSENT or value is None else value


def schema_node(path: str) -> dict:
    node = SCHEMA
    for key in path.split("."):
        node = node["properties"][key]
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def defaults(cls) -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory() for f in dataclasses.fields(cls)}


def defined_in(cls, name: str) -> tuple[str, str]:
    """(class, source file) of the dataclass that declares the field ``name`` of ``cls`` (a base class for an
    inherited field, a subclass where it overrides the default)."""
    owner = next(c for c in cls.__mro__ if name in inspect.get_annotations(c))
    return owner.__name__, f"src/{owner.__module__.replace('.', '/')}.py"


def same(default, value) -> bool:
    """params.yaml's (YAML) value equals the dataclass default: a tuple is a YAML list; a boolean is never a number."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(default) is type(value) and default == value
    return (list(default) if isinstance(default, tuple) else default) == value


def fixed_in_code_table() -> dict[str, tuple[object, str, str]]:
    """docs/workflow.md's "Defaults fixed in code" table: key path -> (value, class, source file)."""
    lines = DOCS.read_text().splitlines()
    assert TABLE_HEADING in lines, f"{DOCS.name} has no section {TABLE_HEADING!r}"
    rows, in_table = {}, False
    for line in lines[lines.index(TABLE_HEADING) + 1:]:
        if not line.startswith("|"):
            if in_table:
                break
            assert not line.startswith("#"), f"no table under {TABLE_HEADING!r}"
            continue
        in_table = True
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "key" or set(cells[0]) <= {"-"}:
            continue
        key, value, where = (re.fullmatch(pattern, cell) for pattern, cell in
                             zip((r"`([\w.]+)`", r"`(.*)`", r"`(\w+)` \(`([\w/.]+)`\)"), cells))
        assert key and value and where, f"{DOCS.name}: a row that does not read key | `value` | `Class` (`file`): {line}"
        assert key[1] not in rows, f"{DOCS.name} lists {key[1]} twice"
        rows[key[1]] = (yaml.safe_load(value[1]), where[1], where[2])
    return rows


def settable_defaults_not_in_params() -> dict[str, tuple[object, str, str]]:
    """Every default that params.yaml could set and does not: key path -> (value, class, source file)."""
    found = {}
    for b in BLOCKS:
        accepted, given = set(schema_node(b.path)["properties"]), block(b.path)
        for name, value in defaults(b.cls).items():
            key = b.key_of(name)
            if key in accepted and key not in given and name not in b.set_elsewhere:
                found[f"{b.path}.{key}"] = (value, *defined_in(b.cls, name))
    return found


@pytest.mark.parametrize("b", BLOCKS, ids=[b.path for b in BLOCKS])
def test_params_values_are_the_code_defaults(b):
    """params.yaml -> code: each key of a block is a field of its dataclass, at the dataclass's default."""
    own, values = defaults(b.cls), {k: v for k, v in block(b.path).items() if k not in b.workflow_keys}
    unknown = sorted(k for k in values if b.field_of(k) not in own)
    assert not unknown, f"params.yaml {b.path} has keys {unknown} that {b.cls.__name__} does not know"
    shadowed = sorted(k for k in values if b.field_of(k) in b.set_elsewhere)
    assert not shadowed, f"params.yaml {b.path} sets {shadowed}, which the workflow sets itself"
    disagree = {k: (own[b.field_of(k)], v) for k, v in values.items() if not same(own[b.field_of(k)], v)}
    assert not disagree, f"{b.cls.__name__} defaults (left) disagree with params.yaml {b.path} (right): {disagree}"


def test_every_settable_default_is_in_params_or_the_docs():
    """code -> params.yaml or docs: a default the schema lets params.yaml set is written there (the test above checks
    its value) or listed in docs/workflow.md's table with the same value and defining class, and the table lists
    nothing else."""
    expected, table = settable_defaults_not_in_params(), fixed_in_code_table()
    missing = {k: v[0] for k, v in expected.items() if k not in table}
    assert not missing, (f"defaults that params.yaml could set, but neither writes nor {DOCS.name} ({TABLE_HEADING}) "
                         f"lists: {missing}")
    extra = sorted(set(table) - set(expected))
    assert not extra, (f"{DOCS.name} ({TABLE_HEADING}) lists {extra}: params.yaml writes them, cannot set them, or the "
                       "code has no such default")
    wrong = {k: (table[k][0], expected[k][0]) for k in table if not same(expected[k][0], table[k][0])}
    assert not wrong, f"{DOCS.name} ({TABLE_HEADING}) values (left) disagree with the code's defaults (right): {wrong}"
    misplaced = {k: (table[k][1:], expected[k][1:]) for k in table if table[k][1:] != expected[k][1:]}
    assert not misplaced, f"{DOCS.name} ({TABLE_HEADING}) names the wrong class or file (left; the code's: right): {misplaced}"


@pytest.mark.parametrize("b", BLOCKS, ids=[b.path for b in BLOCKS])
def test_schema_accepts_what_the_dataclass_reads(b):
    accepted = {b.field_of(k) for k in schema_node(b.path)["properties"] if k not in b.workflow_keys}
    fields = set(defaults(b.cls))
    assert accepted <= fields, f"the schema accepts {sorted(accepted - fields)} in {b.path}, which {b.cls.__name__} does not know"
    fixed = {name for cls, name, _, _ in NOT_PARAMETERS if cls is b.cls}
    refused = sorted(fields - set(b.set_elsewhere) - fixed - accepted)
    assert not refused, f"the schema refuses {refused} in {b.path}, which {b.cls.__name__} reads"


@pytest.mark.parametrize("cls, path", PARTIAL_BLOCKS, ids=[p for _, p in PARTIAL_BLOCKS])
def test_partial_blocks_name_fields_only(cls, path):
    unknown = sorted(set(block(path)) - set(defaults(cls)))
    assert not unknown, f"params.yaml {path} has keys {unknown} that {cls.__name__} does not know"


@pytest.mark.parametrize("cls, name, value, page", NOT_PARAMETERS, ids=[n for _, n, _, _ in NOT_PARAMETERS])
def test_defaults_that_are_not_parameters_are_stated_in_the_docs(cls, name, value, page):
    assert defaults(cls)[name] == value
    text = (ROOT / page).read_text()
    assert name in text and str(value) in text, f"{page} does not state {cls.__name__}.{name} = {value}"
    assert f"{cls.__name__}.{name}" in DOCS.read_text(), f"{DOCS.name} does not name {cls.__name__}.{name}"


def test_evaluate_nests_the_fidelity_blocks():
    own = defaults(EvaluateConfig)
    assert own["c2st"] == TwoSampleConfig() and own["swd"] == SlicedWassersteinConfig()  # their blocks: BLOCKS


def test_adm_flags_are_the_paper_overlays():
    """source.adm is absent from params.yaml (it converts a guided-diffusion checkpoint); config/paper_adm.yaml writes
    every flag at the dataclass's defaults, as docs/workflow.md's table says."""
    overlay = yaml.safe_load((ROOT / "config/paper_adm.yaml").read_text())["source"]["adm"]
    assert "adm" not in PARAMS["source"] and overlay == defaults(AdmFlags)


def _schema_defaults(node: dict, prefix: str = ""):
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    for key, sub in node.get("properties", {}).items():
        if "default" in sub:
            yield f"{prefix}{key}", sub["default"]
        yield from _schema_defaults(sub, f"{prefix}{key}.")


def test_schema_defaults_are_the_params_values():
    """The schema's default: values (filled in by Snakemake's validation) are params.yaml's."""
    found = dict(_schema_defaults(SCHEMA))
    assert found, "the schema has no default: values"
    disagree = {k: (v, written(k)) for k, v in found.items() if not same(v, written(k))}
    assert not disagree, f"the schema's defaults (left) disagree with params.yaml (right): {disagree}"


def _leaf_paths(node: dict, prefix: str = ""):
    for key, value in node.items():
        path = f"{prefix}{key}"
        yield from _leaf_paths(value, path + ".") if isinstance(value, dict) else [path]


def test_every_params_key_is_read_by_a_dataclass_or_the_workflow():
    owners = [b.path for b in BLOCKS] + [p for _, p in PARTIAL_BLOCKS] + WORKFLOW_KEYS
    owners += [f"{b.path}.{k}" for b in BLOCKS for k in b.workflow_keys if k not in defaults(b.cls)]
    unread = [p for p in _leaf_paths(PARAMS) if not any(p == o or p.startswith(o + ".") for o in owners)]
    assert not unread, f"params.yaml keys that no dataclass block or workflow key covers: {unread}"


def _is_dataclass(node: ast.ClassDef) -> bool:
    names = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
    return any(getattr(n, "id", getattr(n, "attr", None)) == "dataclass" for n in names)


def test_every_settings_dataclass_is_checked():
    found = {node.name for path in (ROOT / "src/domainstudio").rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.ClassDef) and _is_dataclass(node)}
    checked = {b.cls.__name__ for b in BLOCKS} | {cls.__name__ for cls, _ in PARTIAL_BLOCKS}
    checked |= {"LoopConfig", "GanMethodsConfig"}  # through TrainConfig and T2ITrainConfig; through the gan.methods blocks
    assert found - NOT_SETTINGS == checked, f"settings dataclasses not checked: {sorted(found - NOT_SETTINGS - checked)}"


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
