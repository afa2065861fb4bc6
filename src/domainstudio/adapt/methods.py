"""The adaptation methods of the diffusion family, by name (and the paper's ablation).

Every method trains with :class:`~domainstudio.adapt.objectives.DomainStudio`; a method is the set of extra
terms it switches on, with the weights of params.yaml (``adapt.weights``), so the ablation changes one thing:

=============  ===============================================  =========================
method         terms on top of L_simple                         paper
=============  ===============================================  =========================
ddpm-ft        none                                             DDPM fine-tuning baseline
ds-img         l_img                                            DDPM-PA's first form
ds-img-hf      l_img, l_hf                                      DomainStudio ablation
domainstudio   l_img, l_hf, l_hfmse                             DomainStudio (full)
domainstudio-  l_img, l_hf, l_hfmse with ``adapt.paper``'s       DomainStudio as the paper's text
paper          weights and options                              describes it
domainstudio-  l_img, l_hf, l_hfmse with ``adapt.official``'s    DomainStudio as its released
official       training settings, weights and options           code runs it
ddpm-ft-       none, with ``adapt.official``'s training         DDPM-FT under the released
official       settings                                         code's protocol
=============  ===============================================  =========================

``dpms-ant`` (DPMs-ANT, Wang et al. 2024) trains adaptors beside the frozen source model with its own objective
(:mod:`domainstudio.adapt.ant`) and ``adapt.ant``'s settings; it has none of the terms above.

``domainstudio`` uses the tuned ``adapt.weights`` and ``adapt.options``; ``domainstudio-paper`` the paper's settings
(``adapt.paper``: pairwise terms at every timestep, weights in the paper's ranges), so a table shows what tuning changed;
``domainstudio-official`` and ``ddpm-ft-official`` the released code's (``adapt.official``: weights 4 / 4 / 1, dropout
0.1, 8 groups of 3 samples per step; :func:`domainstudio.params.arguments.adapt_settings` picks the blocks).
"""
from __future__ import annotations

import copy
import dataclasses

from domainstudio.adapt.objectives import DomainStudio, DomainStudioOptions, DomainStudioWeights

DIFFUSION_METHODS: dict[str, tuple[str, ...]] = {
    "ddpm-ft": (),
    "ds-img": ("l_img",),
    "ds-img-hf": ("l_img", "l_hf"),
    "domainstudio": ("l_img", "l_hf", "l_hfmse"),
    "domainstudio-paper": ("l_img", "l_hf", "l_hfmse"),
    "domainstudio-official": ("l_img", "l_hf", "l_hfmse"),
    "ddpm-ft-official": (),
}


def method_weights(method: str, weights: dict | None) -> DomainStudioWeights:
    """The weights ``method`` trains with: the configured weight of each of its terms, 0 for the others."""
    if method not in DIFFUSION_METHODS:
        raise ValueError(f"unknown diffusion method {method!r}; available: {sorted(DIFFUSION_METHODS)}")
    weights = dict(weights or {})
    names = {f.name for f in dataclasses.fields(DomainStudioWeights)}
    unknown = sorted(set(weights) - names)
    if unknown:
        raise ValueError(f"adapt.weights: unknown term(s) {unknown}; known: {sorted(names)}")
    missing = [term for term in DIFFUSION_METHODS[method] if term not in weights]
    if missing:
        raise ValueError(f"adapt.weights: method {method!r} needs a weight for {missing}")
    base = {"l_vlb": float(weights["l_vlb"])} if "l_vlb" in weights else {}  # every method's, for learned-variance sources
    return DomainStudioWeights(**base, **{term: float(weights[term]) for term in DIFFUSION_METHODS[method]})


def build_objective(weights: DomainStudioWeights, source_unet, scheduler, batch_size: int, options: dict | None = None):
    """The training objective. ``source_unet`` is the source model before adaptation starts; a frozen copy of it
    anchors the pairwise terms, made only when the method has one."""
    opts = DomainStudioOptions(**(options or {}))
    frozen = copy.deepcopy(source_unet) if weights.pairwise else None
    return DomainStudio(scheduler, frozen, weights, opts, batch_size=batch_size)
