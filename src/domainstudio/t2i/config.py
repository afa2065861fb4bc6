"""Checks of params.yaml's ``t2i`` block that its schema cannot express; torch-free (run at workflow parse time)."""
from __future__ import annotations

from pathlib import Path

from domainstudio.config import MIN_PAIRWISE_SAMPLES, ConfigError, check_kshot_sets
from domainstudio.t2i import T2I_METHODS


def check_t2i_config(config: dict, root: str | Path = ".") -> None:
    t2i = config.get("t2i") or {}
    if not t2i.get("enabled", False):
        return
    unknown = [m for m in t2i["methods"] if m not in T2I_METHODS]
    if unknown:
        raise ConfigError(f"t2i.methods: {unknown} unknown (known: {sorted(T2I_METHODS)})")
    check_kshot_sets(config, t2i["domains"], t2i["shots"], ("t2i.domains", "t2i.shots"), root)
    weights = t2i.get("weights", {})
    pairwise = weights.get("l_img", 0) > 0 or weights.get("l_hf", 0) > 0
    if pairwise and any(T2I_METHODS[m] for m in t2i["methods"]) and t2i["train"].get("batch_size", 4) < MIN_PAIRWISE_SAMPLES:
        raise ConfigError("t2i.train.batch_size: the relative-distance terms of domainstudio-t2i compare the samples of a "
                          f"batch half and need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
    options = t2i.get("options") or {}
    if options.get("reference_gradient", "detach") == "flow" and options.get("pairwise_reference", "source") != "class-half":
        raise ConfigError("t2i.options.reference_gradient: 'flow' needs pairwise_reference 'class-half' "
                          "(the frozen source model of pairwise_reference 'source' takes no gradient)")
    pipeline = str(t2i["pipeline"])
    if pipeline != "tiny" and not Path(root, pipeline).exists() and pipeline.count("/") != 1:
        raise ConfigError(f"t2i.pipeline: {pipeline!r} is neither 'tiny', a local folder, nor a hub id 'owner/name'")
