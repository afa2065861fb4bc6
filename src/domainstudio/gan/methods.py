"""The few-shot GAN adaptation baselines, by name. Each is one :class:`Adaptation`: which latents a
step draws, whether the discriminator judges whole images or patches, which discriminator weights train, and
the extra generator loss. Everything else (losses, optimiser, R1, batches) is the shared loop of train.py.

========  ==============================================================  ================================
method    what it changes                                                 paper
========  ==============================================================  ================================
tgan      nothing: fine-tune G and D with the pre-training loss            Wang et al. 2018 (TransferGAN)
freezed   the first ``layers`` discriminator layers (input side) frozen    Mo et al. 2020 (FreezeD)
ewc       + lambda * sum_i F_i (theta_i - theta_S,i)^2 on G                Li et al. 2020 (EWC)
cdc       + lambda * L_dist (cross-domain distance consistency of G's      Ojha et al. 2021 (CDC)
          block outputs) and the anchor / patch-level discriminator split
========  ==============================================================  ================================
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

import torch

from domainstudio.registry import KL_DIRECTIONS, METHOD_FAMILIES, MIN_PAIRWISE_SAMPLES, PAIRWISE_REDUCTIONS, check_choices
from domainstudio.gan.losses import cross_domain_consistency_loss, ewc_fisher, ewc_penalty

GAN_METHODS = tuple(m for m, family in METHOD_FAMILIES.items() if family == "gan")  # tgan, freezed, ewc, cdc


@dataclass
class FreezeDConfig:
    layers: int = 3  # discriminator layers frozen from the input side (from_rgb counts as one)


@dataclass
class EwcConfig:
    weight: float = 1.3      # lambda of Li et al. eq. 4; its scale depends on the Fisher (docs/baselines.md: how it is set)
    fisher_batches: int = 8
    fisher_batch_size: int = 32
    fisher: str = "per_sample"  # per_sample: the Fisher's definition; batch_mean: squared batch-mean gradients (losses.ewc_fisher)


@dataclass
class CdcConfig:
    weight: float = 20.0     # lambda of L_dist (Ojha et al. eq. 3); docs/baselines.md: why 20
    feature_batch: int = 4   # z's per step compared by L_dist (the official code's feat_const_batch)
    anchor_every: int = 4    # every N-th step draws z from the anchor regions and uses the image-level D
    anchor_std: float = 0.1  # anchor region: a Gaussian of this std around each of K fixed anchor z's (official subspace_std)
    # The paper's L_dist (defaults) or the official code's (docs/baselines.md, "CDC: paper and official code"):
    kl_direction: str = "paper"  # paper: KL(adapted || source); official: KL(source || adapted)
    reduction: str = "sum"       # sum over samples (paper); mean: over the n (n - 1) entries (official KLDivLoss())
    layers: str = "all"          # all: summed over G's block outputs; random: one random block from 8 px up per anchor (official)
    r1_head: str = "image"       # image: R1 on the image-level logit; step: on the head D uses at that step (official)

    def __post_init__(self):
        check_choices(self, "gan.methods.cdc", {"kl_direction": KL_DIRECTIONS, "reduction": PAIRWISE_REDUCTIONS,
                                                "layers": ("all", "random"), "r1_head": ("image", "step")})


@dataclass
class GanMethodsConfig:
    freezed: FreezeDConfig = field(default_factory=FreezeDConfig)
    ewc: EwcConfig = field(default_factory=EwcConfig)
    cdc: CdcConfig = field(default_factory=CdcConfig)

    @classmethod
    def from_dict(cls, values: dict | None) -> "GanMethodsConfig":
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"gan.methods: unknown method(s) {unknown}; known: {sorted(known)}")
        blocks = {}
        for name, f in known.items():
            sub = f.default_factory
            allowed = {g.name for g in fields(sub)}
            bad = sorted(set(values.get(name, {})) - allowed)
            if bad:
                raise ValueError(f"gan.methods.{name}: unknown key(s) {bad}; allowed: {sorted(allowed)}")
            blocks[name] = sub(**values.get(name, {}))
        return cls(**blocks)


class Adaptation:
    """TGAN and the base of the others: fine-tune everything with the pre-training loss (also pre-training's rule)."""

    name = "tgan"

    def __init__(self, generator, discriminator):
        self.z_dim = generator.cfg.z_dim

    def latents(self, step: int, n: int, rng: torch.Generator) -> tuple[torch.Tensor, bool]:
        """(z, patch): the latents of this step and whether D judges patches instead of whole images."""
        return torch.randn(n, self.z_dim, generator=rng), False

    def discriminator_parameters(self, discriminator) -> list[torch.nn.Parameter]:
        return list(discriminator.parameters())

    def generator_regulariser(self, generator, rng: torch.Generator) -> tuple[torch.Tensor | None, dict]:
        return None, {}

    def r1_on_patches(self, patch: bool) -> bool:
        """Whether this step's R1 penalty differentiates D's patch logits instead of its image logit."""
        return False

    def to(self, device) -> "Adaptation":
        """Move what the rule keeps of the source model to the training device (latents stay on the CPU's generator)."""
        return self


class FreezeD(Adaptation):
    """FreezeD: the discriminator's lower layers keep their source weights; the rest fine-tunes."""

    name = "freezed"

    def __init__(self, generator, discriminator, cfg: FreezeDConfig):
        super().__init__(generator, discriminator)
        n_layers = len(discriminator.layers)
        if not 0 < cfg.layers < n_layers:
            raise ValueError(f"gan.methods.freezed.layers: must be between 1 and {n_layers - 1} (the discriminator has "
                             f"{n_layers} layers), not {cfg.layers}")
        self.frozen = [p for layer in discriminator.layers[: cfg.layers] for p in layer.parameters()]
        for p in self.frozen:
            p.requires_grad_(False)

    def discriminator_parameters(self, discriminator):
        frozen = {id(p) for p in self.frozen}
        return [p for p in discriminator.parameters() if id(p) not in frozen]


class Ewc(Adaptation):
    """EWC: the Fisher information of the source generator weights the distance to the source weights."""

    name = "ewc"

    def __init__(self, generator, discriminator, cfg: EwcConfig, fisher: dict[str, torch.Tensor]):
        super().__init__(generator, discriminator)
        self.weight = cfg.weight
        missing = sorted({n for n, _ in generator.named_parameters()} - set(fisher))
        if missing:
            raise ValueError(f"EWC: the Fisher information lacks the generator weights {missing[:3]}: it belongs to another GAN")
        self.fisher = fisher
        self.source = {n: p.detach().clone() for n, p in generator.named_parameters()}

    def to(self, device):
        self.fisher = {n: f.to(device) for n, f in self.fisher.items()}
        self.source = {n: p.to(device) for n, p in self.source.items()}
        return self

    def generator_regulariser(self, generator, rng):
        penalty = ewc_penalty(generator, self.source, self.fisher)
        return self.weight * penalty, {"ewc": penalty.item()}


def random_layers(n_blocks: int, n: int, rng: torch.Generator) -> torch.Tensor:
    """CDC's official ``feat_ind``: one layer per anchor sample, uniform over every synthesis layer but the first
    (``randint(1, n_latent - 1)`` over its 4x4 layer and two layers per resolution from 8 px up). Here a block per
    resolution: uniform over blocks 1 .. n_blocks - 1 (8 px up), skipping the 4x4 block, so each resolution is as
    likely as in the official draw (docs/baselines.md)."""
    return torch.randint(1, n_blocks, (n,), generator=rng)


class Cdc(Adaptation):
    """CDC: distance consistency with a frozen copy of the source generator, plus the anchor split: every
    ``anchor_every``-th step samples z near one of K fixed anchors and D judges whole images; the other steps
    sample z anywhere and D judges patches only (Ojha et al. §3.2)."""

    name = "cdc"

    def __init__(self, generator, discriminator, cfg: CdcConfig, anchors: int, rng: torch.Generator):
        super().__init__(generator, discriminator)
        if cfg.feature_batch < MIN_PAIRWISE_SAMPLES:
            raise ValueError(f"gan.methods.cdc.feature_batch: distance consistency compares each sample with the others, "
                             f"needs at least {MIN_PAIRWISE_SAMPLES}, not {cfg.feature_batch}")
        self.cfg = cfg
        self.source = copy.deepcopy(generator).eval().requires_grad_(False)
        self.anchors = torch.randn(anchors, self.z_dim, generator=rng)

    def latents(self, step, n, rng):
        if step % self.cfg.anchor_every == 0:
            idx = torch.randint(0, len(self.anchors), (n,), generator=rng)
            return self.anchors[idx] + self.cfg.anchor_std * torch.randn(n, self.z_dim, generator=rng), False
        return torch.randn(n, self.z_dim, generator=rng), True

    def to(self, device):
        self.source.to(device)
        return self

    def generator_regulariser(self, generator, rng):
        z = torch.randn(self.cfg.feature_batch, self.z_dim, generator=rng).to(self.source.const.device)
        with torch.no_grad():
            _, src = self.source(z, return_features=True)
        _, ada = generator(z, return_features=True)
        layer = random_layers(len(ada), len(z), rng) if self.cfg.layers == "random" else None
        dist = cross_domain_consistency_loss(ada, src, self.cfg.kl_direction, self.cfg.reduction, layer)
        return self.cfg.weight * dist, {"cdc": dist.item()}

    def r1_on_patches(self, patch):
        return patch and self.cfg.r1_head == "step"


def source_fisher(generator, discriminator, cfg: EwcConfig, seed: int) -> dict[str, torch.Tensor]:
    """EWC's Fisher information of the source GAN, from its own stream seeded by ``seed``: it depends on the source
    GAN and the seed only, so one computation serves every domain and K (rule ewc_fisher) and equals the one an
    adapt-gan run without a cached Fisher makes."""
    return ewc_fisher(generator, discriminator, cfg.fisher_batches, cfg.fisher_batch_size, torch.Generator().manual_seed(seed), cfg.fisher)


def build_adaptation(method: str, generator, discriminator, cfg: GanMethodsConfig, shots: int, rng: torch.Generator,
                     fisher: dict[str, torch.Tensor] | None = None, seed: int = 0) -> Adaptation:
    """The adaptation rule of ``method``. CDC's anchors draw from ``rng``; EWC uses ``fisher`` when given (rule
    ewc_fisher), else computes it with :func:`source_fisher` and ``seed``."""
    if method == "tgan":
        return Adaptation(generator, discriminator)
    if method == "freezed":
        return FreezeD(generator, discriminator, cfg.freezed)
    if method == "ewc":
        return Ewc(generator, discriminator, cfg.ewc, fisher if fisher is not None else source_fisher(generator, discriminator, cfg.ewc, seed))
    if method == "cdc":
        return Cdc(generator, discriminator, cfg.cdc, shots, rng)
    raise ValueError(f"unknown GAN method {method!r}; available: {list(GAN_METHODS)}")
