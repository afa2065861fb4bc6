"""DPMs-ANT (Wang et al., ICML 2024, arXiv 2308.11948): adaptor training with similarity guidance and adversarial
noise, method ``dpms-ant``.

Only the adaptors beside the frozen source UNet train (:mod:`domainstudio.models.adaptor`). One step, for a batch
x_0 of target images:

1. Adversarial noise selection. eps_0 ~ N(0, I); J times, at a fresh antithetic t_j,
       eps_{j+1} = standardise(eps_j + omega grad_eps L_j),   L_j = mean_b ||eps_j - eps_theta(x_t(eps_j), t_j)||^2
   (squared error summed over pixels, averaged over the batch; standardise: zero mean, unit std per sample), so the
   step trains on the noise the current model predicts worst (:func:`adversarial_noise`).
2. Similarity-guided loss, at a fresh antithetic t with x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps_J:
       L = mean_b || eps_J - c (1 - abar_t) grad_{x_t} log p(y = target | x_t) - eps_theta(x_t, t) ||^2
   with the frozen domain classifier of :mod:`domainstudio.adapt.domain_classifier` (:func:`similarity_guided_loss`).

Where this follows the authors' train.py rather than the paper's text, and the one place it does not: the gradient
of L_j reaches eps_j through x_t(eps_j) as well (the paper's argmax over eps); the released code detaches x_t from
eps after the first inner step, so only the direct (eps - eps_theta) path moves it there. docs/method.md lists this
and the other differences (batch drawn each step; linear warm-up then constant learning rate).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from domainstudio.adapt.domain_classifier import TARGET, antithetic_timesteps, guidance_gradient
from domainstudio.models.source import eps_and_v


@dataclass(frozen=True)
class AntOptions:
    """The authors' configs/DDPM/base.yaml: c = 5, J = 10 ascent steps of omega = 0.02."""
    guidance_scale: float = 5.0        # c
    adversarial_steps: int = 10        # J (0: plain noise, no adversarial selection)
    adversarial_step_size: float = 0.02  # omega

    def __post_init__(self):
        if self.adversarial_steps < 0:
            raise ValueError(f"adapt.ant.options.adversarial_steps: at least 0, not {self.adversarial_steps}")


def per_sample_sse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 summed over every pixel and channel, one value per sample (the authors' criterion(...).sum([1, 2, 3]))."""
    return (a.float() - b.float()).pow(2).flatten(1).sum(1)


def standardise(noise: torch.Tensor) -> torch.Tensor:
    """Each sample to zero mean and unit (sample) standard deviation, as the authors' re-normalised noise."""
    mean = noise.mean(dim=(1, 2, 3), keepdim=True)
    return (noise - mean) / noise.std(dim=(1, 2, 3), keepdim=True)


def adversarial_noise(unet, x0: torch.Tensor, noise: torch.Tensor, scheduler, steps: int, step_size: float, draw_t) -> torch.Tensor:
    """eps_J of step 1 (module docstring); ``draw_t()`` gives each inner step's timesteps. Gradients reach only
    the noise: the model's parameters are not touched."""
    for _ in range(steps):
        t = draw_t()
        eps = noise.detach().requires_grad_(True)
        pred, _ = eps_and_v(unet, scheduler.add_noise(x0, eps, t), t)  # x_t(eps), DDPM eq. 4
        loss = per_sample_sse(eps, pred).mean()
        grad, = torch.autograd.grad(loss, eps)
        noise = standardise(eps.detach() + step_size * grad)
    return noise.detach()


def guidance_shift(guidance: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor, scale: float) -> torch.Tensor:
    """c (1 - abar_t) grad log p(target | x_t): what the similarity-guided loss subtracts from the noise."""
    abar = alphas_cumprod.to(guidance.device, torch.float32)[t].view(-1, 1, 1, 1)
    return scale * (1 - abar) * guidance


def similarity_guided_loss(eps_pred: torch.Tensor, noise: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """mean_b ||eps - shift - eps_theta||^2 with shift = :func:`guidance_shift` (step 2 of the module docstring)."""
    return per_sample_sse(noise - shift, eps_pred).mean()


class AdversarialNoiseTraining:
    """The objective of method dpms-ant: ``objective(unet, x0, generator) -> (loss, terms)``, like DomainStudio's."""

    def __init__(self, scheduler, classifier: torch.nn.Module, options: AntOptions = AntOptions()):
        self.scheduler, self.options = scheduler, options
        self.classifier = classifier.eval().requires_grad_(False)

    def __call__(self, unet, x0: torch.Tensor, generator: torch.Generator):
        o, T, n = self.options, self.scheduler.config.num_train_timesteps, x0.shape[0]
        self.classifier.to(x0.device)

        def draw_t():
            return antithetic_timesteps(n, T, generator).to(x0.device)

        start = torch.randn(x0.shape, generator=generator).to(x0.device)
        noise = adversarial_noise(unet, x0, start, self.scheduler, o.adversarial_steps, o.adversarial_step_size, draw_t)
        t = draw_t()
        x_t = self.scheduler.add_noise(x0, noise, t)
        guidance = guidance_gradient(self.classifier, x_t, t, TARGET) if o.guidance_scale else torch.zeros_like(x_t)
        shift = guidance_shift(guidance, self.scheduler.alphas_cumprod, t, o.guidance_scale)
        eps_pred, _ = eps_and_v(unet, x_t, t)
        loss = similarity_guided_loss(eps_pred, noise, shift)
        return loss, {"l_ant": loss.item(),
                      "noise_change": (noise - start).pow(2).flatten(1).mean(1).sqrt().mean().item(),  # RMS change of eps
                      "guidance_rms": shift.pow(2).flatten(1).mean(1).sqrt().mean().item()}


def prepare(unet, scheduler, source_images, target_images, blocks: dict, seed: int, device: str = "auto"):
    """Method dpms-ant before its training loop: attach adaptors to the (frozen) ``unet`` and train the domain
    classifier on uint8 N x H x W x 3 source and target images. ``blocks``: params.yaml's adapt.ant without its train
    block (options, adaptor, classifier). Returns the objective and a record for adaptation.json."""
    from domainstudio.adapt.domain_classifier import ClassifierConfig, train_domain_classifier
    from domainstudio.devices import resolve_device
    from domainstudio.models.adaptor import AdaptorConfig, attach_adaptors
    from domainstudio.models.source import count_parameters
    from domainstudio.training import uint8_nchw

    unknown = sorted(set(blocks) - {"options", "adaptor", "classifier"})
    if unknown:
        raise ValueError(f"adapt.ant: unknown block(s) {unknown}; allowed: ['adaptor', 'classifier', 'options']")
    options = AntOptions(**blocks.get("options", {}))
    adaptor_cfg = AdaptorConfig(**blocks.get("adaptor", {}))
    classifier_cfg = ClassifierConfig(**blocks.get("classifier", {}))
    frozen = count_parameters(unet)
    torch.manual_seed(seed)  # the adaptors' initial weights
    adaptors = attach_adaptors(unet, adaptor_cfg)
    classifier, stats = train_domain_classifier(uint8_nchw(source_images), uint8_nchw(target_images), scheduler, classifier_cfg,
                                                seed, resolve_device(device))
    record = {"ant": {"options": options.__dict__, "adaptor": adaptor_cfg.__dict__, "classifier": classifier_cfg.__dict__,
                      "adaptor_parameters": count_parameters(adaptors), "frozen_parameters": frozen,
                      "trained_fraction": count_parameters(adaptors) / frozen, **stats}}
    return AdversarialNoiseTraining(scheduler, classifier, options), record
