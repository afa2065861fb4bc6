"""Render the embedded benchmark to PNG folders.

Layout per world: ``<root>/source/`` (the large source training set) and, per target domain,
``<root>/<domain>/<K>shot/`` (nested K-shot training sets: the 1-shot set is inside the 5-shot set,
which is inside the 10-shot set) and ``<root>/<domain>/reference/`` (the large set FID compares against).
Every folder carries ``factors.csv``: one row per image with its factors of variation.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from domainstudio.atomic import atomic_dir
from domainstudio.data import churches, faces

WORLDS = {"faces": faces, "churches": churches}  # the embedded worlds, by the name params.yaml's world: gives


def world_module(world: str):
    try:
        return WORLDS[world]
    except KeyError:
        raise ValueError(f"unknown embedded world {world!r}; available: {sorted(WORLDS)}") from None


def backbone_domains(world: str, names: list[str] | None = None) -> tuple[str, ...]:
    """The target domains of ``world`` a metric backbone trains on, in the world's order: those ``names`` lists
    (evaluate.backbone_train.domains), or, if None, every one but the world's held-out domains."""
    module = world_module(world)
    if names is None:
        return tuple(d for d in module.TARGET_DOMAINS if d not in module.HELD_OUT_DOMAINS)
    unknown = sorted(set(names) - set(module.TARGET_DOMAINS))
    if unknown:
        raise ValueError(f"evaluate.backbone_train.domains: {unknown} are not target domains of {world!r} "
                         f"(available: {list(module.TARGET_DOMAINS)})")
    return tuple(d for d in module.TARGET_DOMAINS if d in names)


def backbone_release_name(world: str, names: list[str] | None = None) -> str:
    """The folder of a metric backbone release (releases/<world>/<res>px/<name>): ``metric_backbone``, or, for one
    trained on held-out domains too, ``metric_backbone_with_`` and their names (``metric_backbone_with_photos``)."""
    held_out = [d for d in backbone_domains(world, names) if d in world_module(world).HELD_OUT_DOMAINS]
    return "_with_".join(["metric_backbone", "_".join(held_out)]) if held_out else "metric_backbone"


def _render_into(folder: Path, world: str, domain: str, split: str, indices, size: int, seed: int, desc: str):
    module = world_module(world)
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for out_index, i in enumerate(tqdm(indices, desc=desc, leave=False)):
        image, factors = module.render(domain, split, i, size, seed)
        name = f"{out_index:06d}.png"
        image.save(folder / name)
        rows.append({"file": name, "index": i, **factors})
    with open(folder / "factors.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def render_source(world: str, out: str | Path, count: int, size: int, seed: int) -> None:
    """The source training set: ``count`` images of the world's source domain."""
    with atomic_dir(out) as tmp:
        _render_into(tmp, world, world_module(world).SOURCE, "train", range(count), size, seed, f"{world}/source")


def render_target(world: str, domain: str, out: str | Path, shot_sets: list[int], reference: int, size: int, seed: int) -> None:
    """A target domain: nested K-shot sets and a disjoint reference set."""
    module = world_module(world)
    if domain not in module.TARGET_DOMAINS:
        raise ValueError(f"unknown target domain {domain!r} of world {world!r}; available: {module.TARGET_DOMAINS}")
    with atomic_dir(out) as tmp:
        for k in sorted(shot_sets):
            # The first k images of one fixed "train" sequence: nested by construction.
            _render_into(tmp / f"{k}shot", world, domain, "train", range(k), size, seed, f"{domain}/{k}shot")
        _render_into(tmp / "reference", world, domain, "reference", range(reference), size, seed, f"{domain}/reference")


def domain_overview(world: str, size: int, seed: int, per_domain: int = 10) -> np.ndarray:
    """A (domains x per_domain) block of example images, rows in the world's domain order."""
    module = world_module(world)
    rows = []
    for domain in module.DOMAINS:
        rows.append(np.stack([np.asarray(module.render(domain, "train", i, size, seed)[0]) for i in range(per_domain)]))
    return np.concatenate(rows)
