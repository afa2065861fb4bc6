"""The embedded metric backbone: a feature network trained on the benchmark's own images.

The paper's metrics use ImageNet networks (Inception for FID, AlexNet/VGG for LPIPS) that cannot be downloaded
here. The embedded world instead trains its own: a small CNN, by its own workflow rule, on the source images and
the target reference sets (never on generated samples), supervised to predict each image's domain and every
recorded factor of variation (continuous factors as quantile bins). It then serves three roles:

- LPIPS-style trunk: d(x, y) = 1/L sum_l mean_hw ||f_l(x) - f_l(y)||^2 over the L stages' channel-normalised
  activations (LPIPS, Zhang et al. 2018, eq. 1, with uniform layer weights instead of calibrated ones);
- FID features: the globally pooled last stage (the role of Inception's pool3);
- factor heads: ground-truth diversity of generated samples (metrics/diversity.py), which no ImageNet network gives.

A classifier learns to ignore what does not change its labels, and artifacts do not change a face's domain or factors.
With ``artifact_head`` the backbone also learns to name which of the training family's degradations
(metrics/degradations.py: blur, noise, JPEG, resampling) an image carries, half of each batch degraded at a random
strength, so that its pooled features also answer for low-level quality; the calibration then judges it on the
validation family, which it never saw.

Which factors a domain shows is measured, not assumed: on held-out images of each domain a head counts as
readable when its accuracy beats chance by half the way to perfect (kappa >= 0.5); only those enter diversity.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

N_BINS = 5  # continuous factors are predicted as quantile bins of the training distribution
READABLE_KAPPA = 0.5
WIDTHS = (32, 64, 128, 128)


@dataclasses.dataclass
class BackboneTrainConfig:
    steps: int = 1200
    batch_size: int = 128
    lr: float = 2e-3
    holdout: float = 0.1  # fraction of each domain's images kept out of training to measure readability
    seed: int = 0
    artifact_head: bool = False  # also name the training-family degradation an image carries (module docstring)
    domains: list[str] | None = None  # the target domains trained on beside the source; None: all but the held-out ones


class FactorCoder:
    """Factor records <-> class indices: categorical levels as given, continuous values by quantile bin."""

    def __init__(self, levels: dict[str, tuple | None], edges: dict[str, list[float]]):
        self.levels, self.edges = levels, edges

    @classmethod
    def fit(cls, levels: dict[str, tuple | None], records: list[dict]) -> "FactorCoder":
        edges = {}
        for name, lv in levels.items():
            if lv is None:
                values = np.array([float(r[name]) for r in records])
                edges[name] = np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]).tolist()
        return cls(levels, edges)

    def n_classes(self, name: str) -> int:
        return N_BINS if self.levels[name] is None else len(self.levels[name])

    def encode(self, name: str, value) -> int:
        if self.levels[name] is None:
            return int(np.searchsorted(self.edges[name], float(value), side="right"))
        strings = [str(v) for v in self.levels[name]]
        return strings.index(str(value))

    def state(self) -> dict:
        return {"levels": {k: (None if v is None else list(v)) for k, v in self.levels.items()}, "edges": self.edges}

    @classmethod
    def from_state(cls, state: dict) -> "FactorCoder":
        return cls({k: (None if v is None else tuple(v)) for k, v in state["levels"].items()}, state["edges"])


class MetricNet(nn.Module):
    """Four conv stages (32-64-128-128 channels, strides 1-2-2-2) with a domain head and one head per factor."""

    def __init__(self, n_domains: int, factor_classes: dict[str, int], n_artifacts: int = 0):
        super().__init__()
        stages, c_in = [], 3
        for i, c in enumerate(WIDTHS):
            stages.append(nn.Sequential(nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), nn.GroupNorm(8, c), nn.ReLU()))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.domain_head = nn.Linear(c_in, n_domains)
        self.factor_heads = nn.ModuleDict({name: nn.Linear(c_in, n) for name, n in factor_classes.items()})
        if n_artifacts:
            self.artifact_head = nn.Linear(c_in, n_artifacts)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def heads(self, pooled: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.domain_head(pooled), {name: head(pooled) for name, head in self.factor_heads.items()}


def _to_input(images: np.ndarray, resolution: int) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x R x R in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x


def artifact_classes() -> list[str]:
    """The artifact head's classes: no degradation, then the training family's degradations."""
    from domainstudio.metrics.degradations import TRAINING_FAMILY

    return ["none", *TRAINING_FAMILY]


def degrade_batch(images: np.ndarray, rng: np.random.Generator, p_clean: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A training batch with about half its images under one training-family degradation each, at a strength drawn
    uniformly between the family's mildest and strongest level; returns the images and their artifact classes."""
    from domainstudio.metrics.degradations import TRAINING_FAMILY, degrade

    names = artifact_classes()
    labels = np.where(rng.random(len(images)) < p_clean, 0, rng.integers(1, len(names), len(images)))
    out = images.copy()
    for i in np.flatnonzero(labels):
        levels = TRAINING_FAMILY[names[labels[i]]][1]
        strength = rng.uniform(min(levels), max(levels))
        out[i] = degrade(images[i:i + 1], names[labels[i]], strength, seed=int(rng.integers(2**31)))[0]
    return out, labels


def read_factors(folder: Path) -> list[dict]:
    with open(Path(folder) / "factors.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def train_backbone(sets: dict[str, tuple[np.ndarray, list[dict]]], levels: dict[str, tuple | None], cfg: BackboneTrainConfig):
    """Train MetricNet on ``sets`` (domain -> (uint8 images, factor records)); returns (net, coder, report).

    The report holds held-out accuracy of every head per domain and which factors are readable where.
    """
    domains = list(sets)
    rng = np.random.default_rng(cfg.seed)
    all_records = [r for _, recs in sets.values() for r in recs]
    coder = FactorCoder.fit(levels, all_records)
    names = list(levels)
    train_x, train_y, held = [], [], {}
    for d_index, (domain, (images, records)) in enumerate(sets.items()):
        labels = np.array([[d_index] + [coder.encode(n, r[n]) for n in names] for r in records], dtype=np.int64)
        order = rng.permutation(len(images))
        n_hold = max(1, int(round(cfg.holdout * len(images))))
        held[domain] = (images[order[:n_hold]], labels[order[:n_hold]])
        train_x.append(images[order[n_hold:]])
        train_y.append(labels[order[n_hold:]])
    train_x, train_y = np.concatenate(train_x), torch.from_numpy(np.concatenate(train_y))
    resolution = train_x.shape[1]

    torch.manual_seed(cfg.seed)
    n_artifacts = len(artifact_classes()) if cfg.artifact_head else 0
    net = MetricNet(len(domains), {n: coder.n_classes(n) for n in names}, n_artifacts)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for step in range(cfg.steps):
        idx = torch.randint(len(train_x), (cfg.batch_size,), generator=gen)
        if cfg.artifact_head:
            batch, artifact = degrade_batch(train_x[idx.numpy()], rng)
            x = _to_input(batch, resolution)
        else:
            x = _to_input(train_x[idx.numpy()], resolution)
            # mild noise: the metric must not hinge on pixel-exact renderings
            x = x + 0.05 * torch.rand(len(x), 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
        y = train_y[idx]
        pooled = net.stage_features(x)[-1].mean((2, 3))
        domain_logits, factor_logits = net.heads(pooled)
        loss = F.cross_entropy(domain_logits, y[:, 0])
        loss = loss + sum(F.cross_entropy(factor_logits[n], y[:, 1 + i]) for i, n in enumerate(names)) / len(names)
        if cfg.artifact_head:
            loss = loss + F.cross_entropy(net.artifact_head(pooled), torch.from_numpy(artifact))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == cfg.steps - 1:
            log.info("metric backbone step %d/%d loss %.3f", step + 1, cfg.steps, loss.item())
    net.eval()

    report = {"domains": domains, "factors": {}, "domain_accuracy": {}, "readable": {}}
    for d_index, (domain, (images, labels)) in enumerate(held.items()):
        pred = _predict(net, images, resolution)
        report["domain_accuracy"][domain] = float((pred["domain"] == d_index).mean())
        report["readable"][domain] = []
        for i, n in enumerate(names):
            truth = labels[:, 1 + i]
            acc = float((pred[n] == truth).mean())
            chance = float((np.bincount(truth, minlength=coder.n_classes(n)) / len(truth)).max())
            kappa = (acc - chance) / (1 - chance) if chance < 1 else 0.0
            report["factors"].setdefault(n, {})[domain] = {"accuracy": acc, "chance": chance, "kappa": kappa}
            if kappa >= READABLE_KAPPA:
                report["readable"][domain].append(n)
    if cfg.artifact_head:  # held-out accuracy of the artifact head, each image under a random degradation
        report["artifact_classes"] = artifact_classes()
        images = np.concatenate([x for x, _ in held.values()])
        batch, truth = degrade_batch(images, np.random.default_rng(cfg.seed + 1))
        with torch.no_grad():
            logits = torch.cat([net.artifact_head(net.stage_features(_to_input(b, resolution))[-1].mean((2, 3)))
                                for b in np.array_split(batch, max(1, len(batch) // 250))])
        report["artifact_accuracy"] = float((logits.argmax(1).numpy() == truth).mean())
    return net, coder, report


@torch.no_grad()
def _predict(net: MetricNet, images: np.ndarray, resolution: int, batch_size: int = 250) -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    for start in range(0, len(images), batch_size):
        domain_logits, factor_logits = net.heads(net.stage_features(_to_input(images[start:start + batch_size], resolution))[-1].mean((2, 3)))
        out.setdefault("domain", []).append(domain_logits.argmax(1).numpy())
        for n, logits in factor_logits.items():
            out.setdefault(n, []).append(logits.argmax(1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


class EmbeddedBackbone:
    """A trained MetricNet loaded from its folder, with the three uses named in the module docstring."""

    name = "embedded"

    def __init__(self, net: MetricNet, coder: FactorCoder, meta: dict, resize: int | None = None, batch_size: int = 250):
        self.net, self.coder, self.meta = net.eval(), coder, meta
        self.resolution = resize or meta["resolution"]
        self.batch_size = batch_size

    @classmethod
    def load(cls, folder: str | Path, resize: int | None = None) -> "EmbeddedBackbone":
        from safetensors.torch import load_file

        from domainstudio.manifest import is_release, verify_release

        folder = Path(folder)
        missing = [f for f in ("backbone.json", "backbone.safetensors") if not (folder / f).exists()]
        if missing:
            raise FileNotFoundError(f"embedded metric backbone {folder} lacks {missing}; the train_backbone rule writes it "
                                    f"(or evaluate.embedded_backbone names a release folder)")
        if is_release(folder):
            verify_release(folder)
        meta = json.loads((folder / "backbone.json").read_text())
        coder = FactorCoder.from_state(meta["coder"])
        net = MetricNet(len(meta["report"]["domains"]), {n: coder.n_classes(n) for n in coder.levels},
                        len(meta["report"].get("artifact_classes", [])))
        net.load_state_dict(load_file(folder / "backbone.safetensors"))
        return cls(net, coder, meta, resize)

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        save_file(self.net.state_dict(), Path(folder) / "backbone.safetensors")
        (Path(folder) / "backbone.json").write_text(json.dumps(self.meta, indent=2))

    def _batches(self, images: np.ndarray):
        for start in range(0, len(images), self.batch_size):
            yield self.net.stage_features(_to_input(images[start:start + self.batch_size], self.resolution))

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        """LPIPS-style embedding e(x), float64 N x D, with d(x, y) = ||e(x) - e(y)||^2 (module docstring)."""
        out = []
        for feats in self._batches(images):
            parts = [(f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)).flatten(1) / (f.shape[2] * f.shape[3] * len(feats)) ** 0.5
                     for f in feats]
            out.append(torch.cat(parts, 1).double())
        return torch.cat(out)

    @torch.no_grad()
    def fid_features(self, images: np.ndarray) -> np.ndarray:
        """Globally pooled last-stage activations, float64 N x 128 (the features FID and KID compare)."""
        return torch.cat([feats[-1].mean((2, 3)).double() for feats in self._batches(images)]).numpy()

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted domain index and factor class per image."""
        return _predict(self.net, images, self.resolution, self.batch_size)

    def readable_factors(self, domain: str) -> list[str]:
        return list(self.meta["report"]["readable"].get(domain, []))

    def domain_index(self, domain: str) -> int:
        return self.meta["report"]["domains"].index(domain)


def build_embedded_backbone(world: str, data_root: str | Path, resolution: int, cfg: BackboneTrainConfig) -> EmbeddedBackbone:
    """Train the backbone on ``data_root/source`` and the ``reference`` folder of each target domain of ``world`` that
    ``cfg.domains`` names (if None, every one but the world's held-out domains)."""
    from domainstudio.data.images import load_image_folder
    from domainstudio.data.world import backbone_domains, world_module

    module = world_module(world)
    targets = backbone_domains(world, cfg.domains)
    data_root = Path(data_root)
    folders = {module.SOURCE: data_root / "source", **{d: data_root / d / "reference" for d in targets}}
    sets = {}
    for domain, folder in folders.items():
        images = load_image_folder(folder, resolution)
        records = read_factors(folder)
        if len(records) != len(images):
            raise ValueError(f"{folder}/factors.csv has {len(records)} rows for {len(images)} images")
        sets[domain] = (images, records)
    net, coder, report = train_backbone(sets, module.FACTOR_LEVELS, cfg)
    meta = {"world": world, "resolution": resolution, "train": dataclasses.asdict(cfg), "coder": coder.state(),
            "report": report, "trained_on": {d: str(f) for d, f in folders.items()}}
    return EmbeddedBackbone(net, coder, meta)


def sanity_checks(backbone: EmbeddedBackbone, sets: dict[str, np.ndarray], seed: int = 0, n: int = 100) -> dict:
    """Evidence that the backbone is a sensible metric, on ``n`` images per domain of ``sets``.

    LPIPS-style distance: an image vs itself (must be 0); vs noised copies of growing strength (must grow);
    vs other images of the same domain (different identities, must be farther than a lightly noised copy).
    FID features: FID between two halves of one domain vs between domains (domains must separate).
    """
    from domainstudio.metrics.fid import fid, statistics
    from domainstudio.metrics.lpips_embedding import squared_distances

    rng = np.random.default_rng(seed)
    out = {"noise_sigmas": [0.02, 0.05, 0.1, 0.2], "domains": {}}
    for domain, images in sets.items():
        x = images[rng.permutation(len(images))[:n]]
        e = backbone(x)
        noised = []
        for sigma in out["noise_sigmas"]:
            y = np.clip(x + rng.normal(0, 255 * sigma, x.shape), 0, 255).astype(np.uint8)
            noised.append(float(((backbone(y) - e) ** 2).sum(1).mean()))
        pair = squared_distances(e, e)
        off_diag = pair[~torch.eye(len(x), dtype=torch.bool)]
        out["domains"][domain] = {"self": float(torch.diagonal(pair).abs().max()), "noised": noised,
                                  "other_identities": float(off_diag.mean())}
    names = list(sets)
    feats = {d: backbone.fid_features(sets[d][: 2 * n]) for d in names}
    half = min(len(f) for f in feats.values()) // 2
    out["fid_within"] = {d: fid(f[:half], *statistics(f[half:2 * half])) for d, f in feats.items()}
    out["fid_between"] = {f"{a}|{b}": fid(feats[a][:half], *statistics(feats[b][half:2 * half])) for a in names for b in names if a < b}
    return out
