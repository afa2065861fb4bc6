"""A workflow stage's settings as its CLI verb receives them: ``--config-json``, a block of params.yaml already
validated by the workflow's schema, turned into the stage's dataclasses. Unknown keys are refused here too, so a
verb run by hand fails as clearly as the workflow does."""
from __future__ import annotations

import dataclasses
import json


def dataclass_from(cls, values: dict | None, where: str):
    """``cls(**values)``, naming the parameter block ``where`` and the allowed keys when a key is unknown."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SystemExit(f"error: unknown key(s) {unknown} in {where}; allowed: {sorted(names)}")
    return cls(**values)


def config_blocks(config_json: str, allowed: set[str], where: str) -> dict:
    """A stage's --config-json as a dict, refusing top-level keys the stage does not know."""
    cfg = json.loads(config_json)
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise SystemExit(f"error: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
    return cfg


def meta_pairs(pairs: list[str]) -> dict:
    """``key=value`` command-line pairs (a run's world, domain, shots, method, ...) as a dict."""
    return dict(kv.split("=", 1) for kv in pairs)
