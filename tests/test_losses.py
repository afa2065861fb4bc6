"""DomainStudio's terms do what they claim."""
import copy

import numpy as np
import pytest
import pywt
import torch

from domainstudio.adapt.losses import haar_highpass, haar_subbands, hf_reconstruction_loss, predicted_x0, relative_distance_loss
from domainstudio.adapt.methods import DIFFUSION_METHODS, build_objective, method_weights
from domainstudio.adapt.objectives import DomainStudio, DomainStudioOptions, DomainStudioWeights, NoisePrediction
from domainstudio.models.source import SchedulerConfig, build_scheduler
from tests.conftest import tiny_unet

FULL = {"l_img": 1.0, "l_hf": 0.5, "l_hfmse": 0.05}


def test_haar_subbands_match_pywavelets():
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 6))
    ours = haar_subbands(torch.from_numpy(x).float())
    cA, (cH, cV, cD) = pywt.dwt2(x, "haar", axes=(-2, -1))
    for name, ref in (("LL", cA), ("LH", cH), ("HL", cV), ("HH", cD)):
        np.testing.assert_allclose(ours[name].numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(haar_highpass(torch.from_numpy(x).float()).numpy(), cH + cV + cD, atol=1e-5)


def test_highpass_of_a_flat_image_is_zero():
    assert haar_highpass(torch.full((1, 3, 8, 8), 0.3)).abs().max() < 1e-7


def test_predicted_x0_inverts_the_forward_process():
    sched = build_scheduler(SchedulerConfig())
    x0, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    x_t = sched.add_noise(x0, eps, t)
    torch.testing.assert_close(predicted_x0(x_t, eps, sched.alphas_cumprod, t), x0, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("direction", ["paper", "official"])
def test_relative_distance_loss_is_zero_for_identical_sets_and_positive_otherwise(direction):
    a = torch.randn(5, 3, 8, 8)
    assert relative_distance_loss(a, a.clone(), direction).item() == pytest.approx(0.0, abs=1e-6)
    b = a.clone()
    b[0] = b[1] + 0.01 * torch.randn_like(b[1])  # sample 0 collapses onto sample 1
    assert relative_distance_loss(b, a, direction).item() > 1e-3


def test_relative_distance_directions_differ_and_only_the_adapted_side_gets_gradient():
    ada = torch.randn(4, 12, requires_grad=True)
    sou = torch.randn(4, 12, requires_grad=True)
    paper, official = relative_distance_loss(ada, sou, "paper"), relative_distance_loss(ada, sou, "official")
    assert paper.item() != pytest.approx(official.item())
    paper.backward()
    assert ada.grad.abs().sum() > 0 and sou.grad is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_terms_are_float32_inside_autocast(dtype):
    """Under bf16 autocast the KL came out ~100x too large and negative (rounding of the cosine similarities)."""
    base = torch.randn(1, 3, 16, 16)
    ada, sou = base + 0.3 * torch.randn(6, 3, 16, 16), base + 0.3 * torch.randn(6, 3, 16, 16)
    exact = {"img": relative_distance_loss(ada, sou).item(),
             "hf": relative_distance_loss(haar_highpass(ada), haar_highpass(sou)).item(),
             "hfmse": hf_reconstruction_loss(ada, sou).item()}
    assert min(exact.values()) > 0
    with torch.autocast("cpu", dtype=dtype):
        low = ada.to(dtype).requires_grad_()
        got = {"img": relative_distance_loss(low, sou), "hf": relative_distance_loss(haar_highpass(low), haar_highpass(sou)),
               "hfmse": hf_reconstruction_loss(low, sou)}
    for name, value in got.items():
        assert value.dtype == torch.float32
        assert value.item() == pytest.approx(exact[name], rel=0.05), name  # the input's own rounding only
    sum(got.values()).backward()
    assert low.grad.dtype == dtype and torch.isfinite(low.grad).all()


def test_relative_distance_needs_three_samples():
    """With 2 samples the softmax over j != i has one entry: p = 1 for both models and the KL is 0 whatever they are."""
    with pytest.raises(ValueError, match="at least 3 samples .* the KL is 0"):
        relative_distance_loss(torch.randn(2, 4), torch.randn(2, 4))


def _objective(weights, source, **options):
    """The objective with the pairwise terms at every timestep unless ``options`` say otherwise."""
    sched = build_scheduler(SchedulerConfig())
    return DomainStudio(sched, source, DomainStudioWeights(**weights), DomainStudioOptions(**{"pairwise_min_t": 0, **options}), batch_size=4)


def test_pairwise_terms_vanish_when_adapted_equals_source():
    unet = tiny_unet()
    objective = _objective({"l_img": 1.0, "l_hf": 1.0}, copy.deepcopy(unet))
    _, terms = objective(unet, torch.rand(4, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert terms["l_img"] == pytest.approx(0.0, abs=1e-6) and terms["l_hf"] == pytest.approx(0.0, abs=1e-6)
    changed = copy.deepcopy(unet)
    with torch.no_grad():
        for p in changed.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, terms = objective(changed, torch.rand(4, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert terms["l_img"] > 1e-6 and terms["l_hf"] > 1e-6


@pytest.mark.parametrize("hfmse_weight", [True, False])
def test_gradients_are_finite_at_the_largest_timestep(hfmse_weight):
    sched = build_scheduler(SchedulerConfig())
    source, unet = tiny_unet(), tiny_unet()
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x0, noise = torch.rand(4, 3, 16, 16) * 2 - 1, torch.randn(4, 3, 16, 16)
    t = torch.full((4,), sched.config.num_train_timesteps - 1)
    x_t = sched.add_noise(x0, noise, t)
    x0_ada = predicted_x0(x_t, unet(x_t, t).sample, sched.alphas_cumprod, t)
    with torch.no_grad():
        x0_sou = predicted_x0(x_t, source(x_t, t).sample, sched.alphas_cumprod, t)
    weight = sched.alphas_cumprod[t] if hfmse_weight else None
    loss = (relative_distance_loss(x0_ada, x0_sou) + relative_distance_loss(haar_highpass(x0_ada), haar_highpass(x0_sou))
            + hf_reconstruction_loss(x0_ada, x0, weight))
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in unet.parameters() if p.grad is not None])
    assert torch.isfinite(loss) and torch.isfinite(grads).all() and grads.abs().sum() > 0


def test_all_weights_zero_is_exactly_ddpm_ft():
    sched = build_scheduler(SchedulerConfig())
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    a, _ = DomainStudio(sched, None, DomainStudioWeights())(tiny_unet(), x0, torch.Generator().manual_seed(3))
    b, _ = NoisePrediction(sched)(tiny_unet(), x0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_pairwise_max_t_excludes_noisy_samples():
    unet = tiny_unet()
    changed = copy.deepcopy(unet)
    with torch.no_grad():
        for p in changed.parameters():
            p.add_(0.05 * torch.randn_like(p))
    objective = _objective({"l_img": 1.0}, unet, pairwise_max_t=1)  # t >= 1 almost surely: no pairwise term
    _, terms = objective(changed, torch.rand(4, 3, 16, 16) * 2 - 1, torch.Generator().manual_seed(0))
    assert "l_img" not in terms


@pytest.mark.parametrize("lo, hi", [(0, 500), (500, None), (200, 800)])
def test_pairwise_window_uses_exactly_the_samples_with_t_inside(lo, hi):
    from domainstudio.adapt.objectives import noised_batch

    source = tiny_unet()
    adapted = copy.deepcopy(source)
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(0.05 * torch.randn_like(p))
    objective = _objective({"l_img": 1.0}, source, pairwise_min_t=lo, pairwise_max_t=hi)
    x0 = torch.rand(12, 3, 16, 16) * 2 - 1
    _, terms = objective(adapted, x0, torch.Generator().manual_seed(0))
    b = noised_batch(objective.scheduler, x0, torch.Generator().manual_seed(0))  # the same draw of t and eps
    keep = (b.t >= lo) & (b.t < (hi if hi is not None else 10**9))
    assert 2 <= int(keep.sum()) < len(keep)
    abar = objective.scheduler.alphas_cumprod
    with torch.no_grad():
        x_t, t = b.x_t[keep], b.t[keep]
        expected = relative_distance_loss(predicted_x0(x_t, adapted(x_t, t).sample, abar, t),
                                          predicted_x0(x_t, source(x_t, t).sample, abar, t))
    assert terms["l_img"] == pytest.approx(expected.item(), rel=1e-3, abs=1e-7)


def test_methods_switch_terms_and_batch_one_is_an_error():
    assert method_weights("ddpm-ft", FULL) == DomainStudioWeights()
    assert method_weights("ds-img", FULL) == DomainStudioWeights(l_img=1.0)
    assert method_weights("ds-img-hf", FULL) == DomainStudioWeights(l_img=1.0, l_hf=0.5)
    assert method_weights("domainstudio", FULL) == DomainStudioWeights(**FULL)
    assert method_weights("domainstudio-paper", FULL) == DomainStudioWeights(**FULL)  # its own weights come from adapt.paper
    assert method_weights("domainstudio-official", FULL) == DomainStudioWeights(**FULL)  # its own weights come from adapt.official
    assert method_weights("ddpm-ft-official", FULL) == DomainStudioWeights()
    assert set(DIFFUSION_METHODS) == {"ddpm-ft", "ds-img", "ds-img-hf", "domainstudio", "domainstudio-paper",
                                      "domainstudio-official", "ddpm-ft-official"}
    with pytest.raises(ValueError, match="unknown diffusion method"):
        method_weights("magic", FULL)
    sched = build_scheduler(SchedulerConfig())
    with pytest.raises(ValueError, match="batch size of at least 3"):
        build_objective(method_weights("ds-img", FULL), tiny_unet(), sched, batch_size=1)
    build_objective(method_weights("ddpm-ft", FULL), None, sched, batch_size=1)  # no pairwise term: fine


def test_build_objective_freezes_a_copy_of_the_source():
    unet = tiny_unet()
    objective = build_objective(method_weights("ds-img", FULL), unet, build_scheduler(SchedulerConfig()), batch_size=4)
    assert objective.source is not unet
    with torch.no_grad():
        next(unet.parameters()).add_(1.0)  # training the adapted model must not move the anchor
    assert not torch.equal(next(unet.parameters()), next(objective.source.parameters()))
    assert not any(p.requires_grad for p in objective.source.parameters())


@pytest.mark.parametrize("field, value", [("kl_direction", "forward"), ("pairwise_reduction", "max"), ("hfmse_weighting", "snr"),
                                          ("haar", "db2"), ("pairwise_samples", 2)])
def test_options_are_refused_when_built_naming_the_parameter(field, value):
    with pytest.raises(ValueError, match=f"adapt.options.{field}"):
        DomainStudioOptions(**{field: value})
