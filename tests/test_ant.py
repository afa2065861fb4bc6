"""DPMs-ANT (method dpms-ant): its loss and its adversarial noise against references written out from the equations,
its classifier's guidance against the analytic gradient, and its adaptors on the frozen source UNet."""
import copy
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel

from domainstudio.adapt import ant
from domainstudio.adapt.domain_classifier import (SOURCE, TARGET, ClassifierConfig, antithetic_timesteps, guidance_gradient,
                                                  train_domain_classifier)
from domainstudio.adapt.trainer import TrainConfig, train
from domainstudio.models.adaptor import AdaptorConfig, attach_adaptors, has_adaptors
from domainstudio.models.source import SchedulerConfig, build_scheduler, load_source, save_source
from tests.conftest import tiny_unet

SCHED = build_scheduler(SchedulerConfig())
ABAR = SCHED.alphas_cumprod.double().numpy()


class LinearEps(torch.nn.Module):
    """eps_theta(x_t, t) = a x_t: a model whose gradients are known in closed form."""

    def __init__(self, a: float):
        super().__init__()
        self.a = a
        self.config = SimpleNamespace(in_channels=3, out_channels=3)

    def forward(self, x, t):
        return SimpleNamespace(sample=self.a * x)


class LinearClassifier(torch.nn.Module):
    """logits_k = <w_k, x> (t ignored)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, t):
        return x.flatten(1) @ self.w.T


def test_similarity_guided_loss_matches_its_equation():
    rng = np.random.default_rng(0)
    eps_pred, noise, g = (rng.normal(size=(3, 3, 4, 4)) for _ in range(3))
    t, c = np.array([3, 400, 999]), 5.0
    ref = np.mean([np.sum((noise[b] - c * (1 - ABAR[t[b]]) * g[b] - eps_pred[b]) ** 2) for b in range(3)])
    eps_pred_t, noise_t, g_t = (torch.from_numpy(a).float() for a in (eps_pred, noise, g))
    got = ant.similarity_guided_loss(eps_pred_t, noise_t, ant.guidance_shift(g_t, SCHED.alphas_cumprod, torch.from_numpy(t), c))
    assert got.item() == pytest.approx(ref, rel=1e-5)


def test_guidance_gradient_is_the_analytic_gradient_of_log_p_target():
    torch.manual_seed(0)
    w = torch.randn(2, 3 * 4 * 4, dtype=torch.float64) * 0.3
    x = torch.randn(2, 3, 4, 4)
    got = guidance_gradient(LinearClassifier(w.float()), x, torch.zeros(2, dtype=torch.long), TARGET)
    for b in range(2):  # d/dx log softmax(Wx)_y = w_y - sum_k p_k w_k
        logits = w @ x[b].double().flatten()
        p = torch.softmax(logits, 0)
        ref = w[TARGET] - (p[:, None] * w).sum(0)
        np.testing.assert_allclose(got[b].flatten().numpy(), ref.numpy(), rtol=1e-4, atol=1e-6)


def test_one_adversarial_step_matches_the_hand_gradient_then_standardises():
    """L = mean_b ||e - a x_t(e)||^2 with x_t = sqrt(abar) x0 + sqrt(1 - abar) e: dL/de_b = (2/B)(1 - a sqrt(1 - abar)) (e - a x_t)."""
    rng = np.random.default_rng(1)
    x0, e = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 3, 4, 4))
    t, a, omega = np.array([100, 800]), 0.7, 0.02
    expected = []
    for b in range(2):
        s, n = math.sqrt(ABAR[t[b]]), math.sqrt(1 - ABAR[t[b]])
        x_t = s * x0[b] + n * e[b]
        grad = 2 / 2 * (1 - a * n) * (e[b] - a * x_t)
        moved = e[b] + omega * grad
        expected.append((moved - moved.mean()) / moved.std(ddof=1))
    got = ant.adversarial_noise(LinearEps(a), torch.from_numpy(x0).float(), torch.from_numpy(e).float(), SCHED,
                                steps=1, step_size=omega, draw_t=lambda: torch.from_numpy(t))
    np.testing.assert_allclose(got.numpy(), np.stack(expected), rtol=1e-4, atol=1e-5)


def test_adversarial_noise_raises_the_loss_it_ascends_and_zero_steps_keep_the_noise():
    torch.manual_seed(0)
    unet, x0, e = tiny_unet(), torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    t = torch.tensor([50, 300, 600, 900])

    def loss(noise):
        with torch.no_grad():
            return ant.per_sample_sse(noise, unet(SCHED.add_noise(x0, noise, t), t).sample).mean().item()

    moved = ant.adversarial_noise(unet, x0, e, SCHED, steps=5, step_size=0.5, draw_t=lambda: t)
    assert loss(moved) > loss(ant.standardise(e))
    torch.testing.assert_close(moved.mean((1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    assert torch.equal(ant.adversarial_noise(unet, x0, e, SCHED, 0, 0.5, lambda: t), e)
    assert all(p.grad is None for p in unet.parameters())  # only the noise was differentiated


class TimeScaledLinearClassifier(torch.nn.Module):
    """logits_k = (1 + t / T) <w_k, x>: its log-softmax gradient is known in closed form and depends on t."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, t):
        return (1 + t.float() / 1000)[:, None] * (x.flatten(1) @ self.w.T)


def reference_ant_loss(x0, start, w, draws, a, c, steps, omega, label=TARGET, sign=-1.0, by_abar=True):
    """DPMs-ANT's loss written out in float64 for eps_theta(x_t) = a x_t and the classifier above: ``steps`` ascent
    steps e <- standardise(e + omega (2/B)(1 - a sqrt(1 - abar))(e - a x_t(e))) at the timesteps ``draws[j]``, then
    at ``draws[-1]``: mean_b ||e_b + sign c (1 - abar_t) grad log p(label | x_t) - a x_t||^2 (the method: sign -1,
    label target; ``by_abar=False`` drops the (1 - abar_t)). Returns (loss, guidance_rms)."""
    x0, e, w = x0.double().numpy(), start.double().numpy(), w.double().numpy()
    B = len(x0)
    for j in range(steps):
        moved = []
        for b in range(B):
            s, n = math.sqrt(ABAR[draws[j][b]]), math.sqrt(1 - ABAR[draws[j][b]])
            x_t = s * x0[b] + n * e[b]
            m = e[b] + omega * 2 / B * (1 - a * n) * (e[b] - a * x_t)
            moved.append((m - m.mean()) / m.std(ddof=1))
        e = np.stack(moved)
    losses, rms = [], []
    for b in range(B):
        t = draws[-1][b]
        s, n = math.sqrt(ABAR[t]), math.sqrt(1 - ABAR[t])
        x_t = s * x0[b] + n * e[b]
        scale = 1 + t / 1000
        logits = scale * (w @ x_t.flatten())
        p = np.exp(logits - logits.max()); p /= p.sum()
        grad = (scale * (w[label] - p @ w)).reshape(x_t.shape)  # d/dx log softmax(scale W x)_label
        shift = c * (1 - ABAR[t] if by_abar else 1.0) * grad
        losses.append(float(((e[b] + sign * shift - a * x_t) ** 2).sum()))
        rms.append(math.sqrt(float((shift ** 2).mean())))
    return float(np.mean(losses)), float(np.mean(rms))


@pytest.mark.parametrize("steps", [0, 2])
def test_dpms_ant_loss_equals_the_written_out_objective(steps):
    """AdversarialNoiseTraining as a whole: eps_0 drawn first, then J antithetic t (the first B // 2 + 1 drawn, the
    rest mirrored) for the ascent and one more for the loss, which subtracts c (1 - abar_t) grad log p(y = target |
    x_t, t) from the noise: the target label, a minus sign, the scale c (1 - abar_t)."""
    B, T = 4, 1000
    x0 = torch.rand(B, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    w = 0.3 * torch.randn(2, 48, generator=torch.Generator().manual_seed(1))
    a, options = 0.7, ant.AntOptions(guidance_scale=5.0, adversarial_steps=steps, adversarial_step_size=0.3)
    g = torch.Generator().manual_seed(7)
    start = torch.randn(x0.shape, generator=g)
    draws = []
    for _ in range(steps + 1):
        half = torch.randint(0, T, (B // 2 + 1,), generator=g).tolist()
        draws.append((half + [T - 1 - t for t in half])[:B])
    expected, rms = reference_ant_loss(x0, start, w, draws, a, options.guidance_scale, steps, options.adversarial_step_size)
    objective = ant.AdversarialNoiseTraining(SCHED, TimeScaledLinearClassifier(w), options)
    loss, terms = objective(LinearEps(a), x0, torch.Generator().manual_seed(7))
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    assert terms["l_ant"] == pytest.approx(expected, rel=1e-4) and terms["guidance_rms"] == pytest.approx(rms, rel=1e-4)
    # the guidance matters here: the other label, the other sign, no (1 - abar_t) or no guidance each move the loss far
    wrong = [reference_ant_loss(x0, start, w, draws, a, 5.0, steps, 0.3, label=SOURCE)[0],
             reference_ant_loss(x0, start, w, draws, a, 5.0, steps, 0.3, sign=+1.0)[0],
             reference_ant_loss(x0, start, w, draws, a, 5.0, steps, 0.3, by_abar=False)[0],
             reference_ant_loss(x0, start, w, draws, a, 0.0, steps, 0.3)[0]]
    assert all(abs(v - expected) > 1e-2 * expected for v in wrong)


def test_antithetic_timesteps_come_in_mirrored_pairs():
    t = antithetic_timesteps(5, 1000, torch.Generator().manual_seed(0))
    assert t.tolist()[3:] == [999 - t[0].item(), 999 - t[1].item()] and len(t) == 5


def test_the_domain_classifier_separates_two_domains():
    source = torch.full((20, 3, 8, 8), 20, dtype=torch.uint8)
    target = torch.full((4, 3, 8, 8), 235, dtype=torch.uint8)
    cfg = ClassifierConfig(channels=[8, 16], steps=40, batch_size=8, lr=3e-3, groups=4)
    model, stats = train_domain_classifier(source, target, SCHED, cfg, seed=0)
    assert stats["classifier_accuracy_t_low"] > 0.9
    x = torch.cat([source[:2], target[:2]]).float() / 127.5 - 1
    assert model(x, torch.zeros(4, dtype=torch.long)).argmax(-1).tolist() == [SOURCE, SOURCE, TARGET, TARGET]


def _out(unet, x, t):
    with torch.no_grad():
        return unet(x, t).sample


def test_adaptors_leave_the_source_frozen_and_add_their_output_beside_each_block():
    unet = tiny_unet()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 700])
    base = _out(unet.eval(), x, t)
    adaptors = attach_adaptors(unet, AdaptorConfig(dim=8, heads=2))
    unet.eval()
    trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("ant_adaptors.") for n in trainable)
    for p in adaptors.parameters():
        p.data.zero_()
    assert torch.equal(_out(unet, x, t), base)  # zero adaptors: the source model exactly
    # the end adaptor reads conv_norm_out's input and adds to conv_out's output
    captured = {}
    hook = unet.conv_norm_out.register_forward_pre_hook(lambda m, a: captured.setdefault("h", a[0].clone()))
    torch.nn.init.normal_(adaptors.end.conv_up.bias, 0, 0.3)
    with_end = _out(unet, x, t)
    hook.remove()
    with torch.no_grad():
        expected = base + adaptors.end(captured["h"])
    torch.testing.assert_close(with_end, expected)
    assert adaptors.end.conv_up.bias.abs().sum() > 0 and not torch.equal(with_end, base)


def test_adapted_copies_use_their_own_adaptors_and_survive_save_and_load(tmp_path):
    unet = tiny_unet()
    adaptors = attach_adaptors(unet, AdaptorConfig(dim=8, heads=2))
    for p in adaptors.parameters():
        p.data.normal_(0, 0.05)
    unet.eval()
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 700])
    out = _out(unet, x, t)
    copied = copy.deepcopy(unet)
    for p in copied.ant_adaptors.parameters():
        p.data.zero_()
    assert torch.equal(_out(unet, x, t), out) and not torch.equal(_out(copied, x, t), out)
    save_source(unet, SCHED, tmp_path / "m")
    loaded, _ = load_source(tmp_path / "m")
    assert has_adaptors(loaded) and torch.equal(_out(loaded.eval(), x, t), out)
    plain = UNet2DModel.from_pretrained(tmp_path / "m", subfolder="unet")  # the saved UNet is the untouched source
    assert torch.equal(_out(plain.eval(), x, t), _out(tiny_unet().eval(), x, t))


def test_adaptors_fit_resampling_resnets_and_attention():
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                       down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "ResnetUpsampleBlock2D"), resnet_time_scale_shift="scale_shift",
                       attention_head_dim=8)
    adaptors = attach_adaptors(unet, AdaptorConfig(dim=8, heads=2))
    assert any("attentions" in k for k in adaptors.blocks) and any(getattr(m, "down", False) for m in unet.modules())
    for p in adaptors.parameters():
        p.data.normal_(0, 0.05)
    out = unet(torch.randn(2, 3, 16, 16), torch.tensor([5, 500])).sample
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()


def test_dpms_ant_trains_only_its_adaptors_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    """prepare + the shared loop: dropout in the adaptors draws from the global stream, which the checkpoint keeps."""
    rng = np.random.default_rng(0)
    source, target = rng.integers(0, 120, (16, 16, 16, 3), dtype=np.uint8), rng.integers(120, 256, (4, 16, 16, 3), dtype=np.uint8)
    blocks = {"adaptor": {"dim": 8, "heads": 2}, "classifier": {"channels": [8, 16], "steps": 5, "batch_size": 4, "groups": 4},
              "options": {"adversarial_steps": 2}}
    cfg = TrainConfig(steps=6, batch_size=3, lr=1e-2, ema_decay=0.5, checkpoint_every=3, seed=3, adam_betas=(0.5, 0.999), weight_decay=0.01)

    def run(checkpoint, objective_wrapper=None):
        unet = tiny_unet()
        objective, record = ant.prepare(unet, SCHED, source, target, blocks, seed=3)
        return train(unet, target, objective_wrapper(objective) if objective_wrapper else objective, cfg, checkpoint, "f"), record

    reference, record = run(tmp_path / "ref.pt")
    assert 0 < record["ant"]["trained_fraction"] < 1 and record["ant"]["adaptor_parameters"] > 0
    untouched = tiny_unet().state_dict()
    state = reference.state_dict()
    assert all(torch.equal(state[k], v) for k, v in untouched.items())  # the source weights did not move
    assert any(v.abs().max() > 0.01 for k, v in state.items() if k.startswith("ant_adaptors.") and "conv_up.weight" in k)

    def dies_at_5(objective):
        calls = {"n": 0}

        def wrapped(unet, x0, generator):
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
            return objective(unet, x0, generator)
        return wrapped

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run.pt", dies_at_5)
    resumed, _ = run(tmp_path / "run.pt")
    for k, v in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


def test_unknown_ant_blocks_and_bad_options_are_refused_before_training():
    images = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="adapt.ant: unknown block"):
        ant.prepare(tiny_unet(), SCHED, images, images, {"adaptors": {}}, seed=0)
    with pytest.raises(ValueError, match="adversarial_steps"):
        ant.prepare(tiny_unet(), SCHED, images, images, {"options": {"adversarial_steps": -1}}, seed=0)
    with pytest.raises(TypeError):
        ant.prepare(tiny_unet(), SCHED, images, images, {"options": {"c": 5}}, seed=0)
    assert json.dumps(ant.AntOptions().__dict__)
