"""The released DomainStudio code's configuration (methods domainstudio-official, ddpm-ft-official; adapt.official):
its values against the release's, the grouped objective against a written-out reference, dropout while training
only, and the ancestral sampler against diffusers' DDPM step."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import yaml

from domainstudio.adapt.methods import method_weights
from domainstudio.adapt.objectives import DomainStudio, DomainStudioOptions, DomainStudioWeights
from domainstudio.adapt.trainer import TrainConfig, resnet_dropouts, set_dropout
from domainstudio.models.source import SchedulerConfig, build_scheduler
from domainstudio.params.arguments import adapt_settings, sample_settings
from domainstudio.registry import OFFICIAL_SETTINGS_METHODS
from domainstudio.sampling import SampleConfig, ancestral_step
from tests.conftest import ROOT, copy_project, noise_image_folder, run, tiny_unet
from tests.test_term_values import reference_haar_highpass, reference_hf_mse, reference_relative_distance

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())

# The released code (bbzhu-jy16/DomainStudio, Unconditional/): README's flags, training_fewshot_losses and the sampler.
RELEASE = {
    "gpus": 8, "batch_per_gpu": 3,             # mpiexec -n 8, --batch_size 3 ("the batch size on each GPU")
    "lr": 1e-4, "dropout": 0.1,                # --lr 1e-4, --dropout 0.1
    "pair_weight": 4.0, "hf_pair_weight": 4.0, "hf_mse_weight": 1.0,   # MODEL_FLAGS
    "sim_size": 3,                             # samples of each GPU's batch in the pairwise terms
    "kl": "official",                          # kl_loss(log p_ada, p_base): KL(p_base || p_ada)
    "reduction": "mean",                       # KLDivLoss(): the mean over the sim_size (sim_size - 1) entries
    "haar": "official",                        # get_wave: the filters applied with Conv2d (a correlation)
    "min_t": 0,                                # the gate on fixed_diffusion_timesteps is commented out
    "hfmse": "none",                           # hf_mse_weight * mean_flat(...), no abar_t weight
    "grad_clip": 0.0,                          # MixedPrecisionTrainer: no gradient clipping
    "sampling_steps": 1000,                    # p_sample_loop over every timestep, ancestral (respaced here: RESPACED_STEPS)
    "combine": None,                           # --combine off: the adapted model alone
}


RESPACED_STEPS = 100  # the one departure: docs/method.md, "Sampler" (same metrics within seed noise, a tenth of the cost)


@pytest.mark.parametrize("method", OFFICIAL_SETTINGS_METHODS)
def test_official_configuration_is_the_released_codes(method):
    settings = adapt_settings(PARAMS["adapt"], method)
    train = TrainConfig(**{k: v for k, v in settings["train"].items()})
    options = DomainStudioOptions(**settings["options"])
    sample = SampleConfig(**sample_settings(PARAMS, method))
    assert train.batch_size == RELEASE["gpus"] * RELEASE["batch_per_gpu"]
    assert options.pairwise_groups == RELEASE["gpus"] and train.batch_size // options.pairwise_groups == RELEASE["batch_per_gpu"]
    assert options.pairwise_samples == RELEASE["sim_size"]
    assert (train.lr, train.dropout, train.grad_clip) == (RELEASE["lr"], RELEASE["dropout"], RELEASE["grad_clip"])
    assert options.kl_direction == RELEASE["kl"] and options.pairwise_reduction == RELEASE["reduction"]
    assert options.haar == RELEASE["haar"] and options.hfmse_weighting == RELEASE["hfmse"]
    assert (options.pairwise_min_t, options.pairwise_max_t) == (RELEASE["min_t"], None)
    # the release's ancestral sampler, on the respacing docs/method.md measured against its 1,000 steps
    assert sample.sampler == "ddpm" and sample.ddim_steps == RESPACED_STEPS
    assert RELEASE["sampling_steps"] == PARAMS["source"]["scheduler"]["num_train_timesteps"]
    assert sample.source_above_t is RELEASE["combine"]
    weights = method_weights(method, settings["weights"])
    if method == "domainstudio-official":
        assert (weights.l_img, weights.l_hf, weights.l_hfmse) == (RELEASE["pair_weight"], RELEASE["hf_pair_weight"], RELEASE["hf_mse_weight"])
    else:  # the plain fine-tuning twin: the same protocol, every extra term off
        assert (weights.l_img, weights.l_hf, weights.l_hfmse) == (0, 0, 0)
    # guided-diffusion's RESCALED_MSE adds vb * T / 1000; here l_vlb * T * L_t: the same 1 x vb for T = 1000
    assert settings["weights"]["l_vlb"] * 1000 == pytest.approx(1.0)
    # the other rows keep their own blocks
    assert adapt_settings(PARAMS["adapt"], "domainstudio")["options"] == PARAMS["adapt"]["options"]
    assert sample_settings(PARAMS, "domainstudio") == PARAMS["sample"]


def _perturbed_pair():
    source, adapted = tiny_unet(), tiny_unet()
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return source, adapted


@pytest.mark.parametrize("options, placed_t", [
    # the released setting: 4 groups of 3, all of each group, official KL, mean, official Haar
    (DomainStudioOptions(kl_direction="official", pairwise_min_t=0, pairwise_samples=3, pairwise_groups=4,
                         pairwise_reduction="mean", hfmse_weighting="none", haar="official"), None),
    # 3 groups of 4 with 3 drawn in each: the draw happens group by group
    (DomainStudioOptions(kl_direction="official", pairwise_min_t=0, pairwise_samples=3, pairwise_groups=3,
                         pairwise_reduction="mean", hfmse_weighting="none", haar="official"), None),
    # a window that leaves the second group with 2 samples: its terms are 0 and it still counts among the groups
    (DomainStudioOptions(pairwise_min_t=500, pairwise_groups=3),
     [600, 700, 800, 900, 100, 200, 650, 750, 510, 990, 999, 505]),
])
def test_grouped_objective_is_the_mean_over_groups_of_each_groups_objective(monkeypatch, options, placed_t):
    """L(groups) = (1/G) sum_g [L_simple_g + l2 L_img_g + l3 L_hf_g + l4 L_hfmse_g] with every group's terms written
    out in float64 loops (as G GPUs each with its own batch whose gradients are averaged)."""
    from domainstudio.adapt import objectives

    sched = build_scheduler(SchedulerConfig())
    source, adapted = _perturbed_pair()
    n, groups = 12, options.pairwise_groups
    x0 = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    if placed_t is not None:
        noise, t_placed = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5)), torch.tensor(placed_t)
        monkeypatch.setattr(objectives, "noised_batch", lambda s, x, g: objectives.NoisedBatch(x, noise, t_placed, s.add_noise(x, noise, t_placed)))
    weights = DomainStudioWeights(l_img=4.0, l_hf=3.0, l_hfmse=0.5)
    loss, terms = DomainStudio(sched, source, weights, options, batch_size=n)(adapted, x0, torch.Generator().manual_seed(5))

    generator = torch.Generator().manual_seed(5)
    b = objectives.noised_batch(sched, x0, generator)  # the same draws, then the objective's draws of pairwise_samples
    with torch.no_grad():
        eps_ada, eps_sou = adapted(b.x_t, b.t).sample.double().numpy(), source(b.x_t, b.t).sample.double().numpy()
    abar = sched.alphas_cumprod.double().numpy()
    ts, x_t, eps, x0_np = b.t.tolist(), b.x_t.double().numpy(), b.noise.double().numpy(), x0.double().numpy()
    x0_ada = np.stack([(x_t[i] - math.sqrt(1 - abar[ts[i]]) * eps_ada[i]) / math.sqrt(abar[ts[i]]) for i in range(n)])
    x0_sou = np.stack([(x_t[i] - math.sqrt(1 - abar[ts[i]]) * eps_sou[i]) / math.sqrt(abar[ts[i]]) for i in range(n)])
    hf = lambda x: reference_haar_highpass(x, options.haar)  # noqa: E731
    rd = lambda a, s: reference_relative_distance(a, s, options.kl_direction, options.pairwise_reduction)  # noqa: E731

    size, per_group, active = n // groups, [], 0
    for g in range(groups):
        members = list(range(g * size, (g + 1) * size))
        keep = [i for i in members if ts[i] >= options.pairwise_min_t]
        if options.pairwise_samples is not None and len(keep) > options.pairwise_samples:
            order = torch.randperm(len(keep), generator=generator)[: options.pairwise_samples].tolist()
            keep = [keep[j] for j in order]
        on = len(keep) >= 3
        active += on
        weight = np.array([abar[ts[i]] for i in members]) if options.hfmse_weighting == "abar" else None
        per_group.append({
            "l_simple": float(np.mean([((eps_ada[i] - eps[i]) ** 2).mean() for i in members])),
            "l_img": rd(x0_ada[keep], x0_sou[keep]) if on else 0.0,
            "l_hf": rd(hf(x0_ada[keep]), hf(x0_sou[keep])) if on else 0.0,
            "l_hfmse": reference_hf_mse(x0_ada[members], x0_np[members], weight, options.haar),
        })
    expected = {k: sum(g[k] for g in per_group) / groups for k in per_group[0]}
    objective_g = [g["l_simple"] + 4.0 * g["l_img"] + 3.0 * g["l_hf"] + 0.5 * g["l_hfmse"] for g in per_group]
    assert terms["pairwise_groups_on"] == active and (active == groups) == (placed_t is None)
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-3), name
    assert loss.item() == pytest.approx(sum(objective_g) / groups, rel=1e-3)
    # the same batch as one group gives other pairwise terms: the test tells grouping from not grouping
    whole = rd(x0_ada[[i for i in range(n) if ts[i] >= options.pairwise_min_t]], x0_sou[[i for i in range(n) if ts[i] >= options.pairwise_min_t]])
    assert abs(whole - expected["l_img"]) > 1e-2 * expected["l_img"]


def test_one_group_is_the_ungrouped_objective():
    sched = build_scheduler(SchedulerConfig())
    source, adapted = _perturbed_pair()
    x0 = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    weights = DomainStudioWeights(l_img=2.0, l_hf=1.0, l_hfmse=0.05)
    base = DomainStudioOptions(pairwise_min_t=0, pairwise_samples=4)
    plain = DomainStudio(sched, source, weights, base, batch_size=6)(adapted, x0, torch.Generator().manual_seed(2))
    one = DomainStudio(sched, source, weights, dataclasses.replace(base, pairwise_groups=1), batch_size=6)(adapted, x0, torch.Generator().manual_seed(2))
    assert plain[0].item() == one[0].item() and plain[1]["l_img"] == one[1]["l_img"]


def test_groups_must_split_the_batch_into_groups_of_three():
    sched = build_scheduler(SchedulerConfig())
    weights = DomainStudioWeights(l_img=1.0)
    with pytest.raises(ValueError, match="pairwise_groups 4"):
        DomainStudio(sched, tiny_unet(), weights, DomainStudioOptions(pairwise_groups=4), batch_size=10)
    with pytest.raises(ValueError, match="pairwise_groups 4"):
        DomainStudio(sched, tiny_unet(), weights, DomainStudioOptions(pairwise_groups=4), batch_size=8)  # groups of 2
    DomainStudio(sched, None, DomainStudioWeights(), DomainStudioOptions(pairwise_groups=4), batch_size=8)  # plain fine-tuning
    with pytest.raises(ValueError, match="pairwise_groups"):
        DomainStudioOptions(pairwise_groups=0)


def test_dropout_is_the_configured_unets_while_training_and_the_saved_model_keeps_its_configuration(tmp_path):
    """set_dropout switches on exactly the dropout layers that UNet2DModel(dropout=p) builds; training with it
    drops out (two training-mode passes differ), and the saved adapted model's configuration is the source's."""
    from diffusers import UNet2DModel

    unet = tiny_unet()
    configured = UNet2DModel(**{**{k: v for k, v in unet.config.items() if not k.startswith("_")}, "dropout": 0.1})
    built = {name: m.p for name, m in configured.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0}
    before = set_dropout(unet, 0.1)
    assert before == [0.0] * len(before) and len(before) > 0
    assert {name: m.p for name, m in unet.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0} == built
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 900])
    unet.train()
    assert not torch.equal(unet(x, t).sample, unet(x, t).sample)
    unet.eval()
    assert torch.equal(unet(x, t).sample, unet(x, t).sample)
    assert unet.config.dropout == 0.0 and all(layer.p == 0.1 for layer in resnet_dropouts(unet))



def test_official_adaptation_and_sampling_record_every_setting(tmp_path):
    """A short domainstudio-official run through the CLI: adaptation.json has the dropout, the groups and every
    option; the saved UNet keeps dropout 0; sampling.json the ancestral sampler and its steps."""
    from domainstudio.cli import main
    from domainstudio.models.source import save_source

    save_source(tiny_unet(16), build_scheduler(SchedulerConfig()), tmp_path / "source")
    official = PARAMS["adapt"]["official"]
    cfg = {"train": {**official["train"], "steps": 2, "batch_size": 6, "checkpoint_every": 0},
           "weights": official["weights"], "options": {**official["options"], "pairwise_groups": 2}}
    assert main(["adapt", "--source", str(tmp_path / "source"), "--images", str(noise_image_folder(tmp_path / "k", 4)), "--shots", "4",
                 "--method", "domainstudio-official", "--resolution", "16", "--config-json", json.dumps(cfg),
                 "--checkpoint", str(tmp_path / "c.pt"), "--out", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "adaptation.json").read_text())
    assert record["train"]["dropout"] == 0.1 and record["train"]["grad_clip"] == 0.0 and record["train"]["batch_size"] == 6
    assert record["options"] == dataclasses.asdict(DomainStudioOptions(**cfg["options"]))
    assert record["weights"] == {"l_img": 4.0, "l_hf": 4.0, "l_hfmse": 1.0, "l_vlb": 0.001} and record["learned_variance"] is False
    assert record["pairwise_mean_groups_on"] == 2 and record["pairwise_mean_samples"] == 6
    assert json.loads((tmp_path / "a" / "unet" / "config.json").read_text())["dropout"] == 0.0
    sample = {**sample_settings(PARAMS, "domainstudio-official"), "n_samples": 3, "ddim_steps": 50, "batch_size": 2}
    assert main(["sample", "--model", str(tmp_path / "a"), "--out", str(tmp_path / "s"), "--config-json", json.dumps(sample)]) == 0
    written = json.loads((tmp_path / "s" / "sampling.json").read_text())
    assert (written["sampler"], written["ddim_steps"], written["source_above_t"]) == ("ddpm", 50, None)


def _scheduler_args() -> dict:
    """The project's training schedule as constructor arguments (from_config would drop overrides of defaults)."""
    return {k: v for k, v in build_scheduler(SchedulerConfig()).config.items() if not k.startswith("_")}


@pytest.mark.parametrize("variance_type, steps", [("fixed_small", 1000), ("fixed_large", 1000), ("learned_range", 1000), ("fixed_small", 50)])
def test_ancestral_step_is_diffusers_ddpm_step(variance_type, steps):
    """ancestral_step with the noise given equals DDPMScheduler.step drawing the same noise (its posterior mean of
    the clipped x0_hat and its variance), on the full and a respaced schedule, at high, middle and the last t."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**{**_scheduler_args(), "variance_type": variance_type})
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    v = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    for t in (int(sched.timesteps[0]), int(sched.timesteps[len(sched.timesteps) // 2]), int(sched.timesteps[-1])):
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        model_output = torch.cat([eps, v], 1) if variance_type == "learned_range" else eps
        expected = sched.step(model_output, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        got = ancestral_step(sched, eps, v if variance_type == "learned_range" else None, t, x, noise)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_ddim_eta_one_over_every_step_is_the_ancestral_step_only_without_clipping():
    """DDIM with eta 1 over all 1,000 steps has sigma_t^2 = beta~_t and the posterior mean: the ancestral sampler with
    the fixed_small variance, when x0_hat is not clipped. With clipping (the release's clip_denoised, the scheduler's
    clip_sample) they part: diffusers' DDIM keeps the model's eps after clipping x0_hat."""
    from diffusers import DDIMScheduler, DDPMScheduler

    g = torch.Generator().manual_seed(1)
    x, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    for clip in (False, True):
        ddpm = DDPMScheduler(**{**_scheduler_args(), "clip_sample": clip})
        ddim = DDIMScheduler.from_config(ddpm.config)
        assert ddpm.config.clip_sample == ddim.config.clip_sample == clip
        ddpm.set_timesteps(1000)
        ddim.set_timesteps(1000)
        differs = []
        for t in (999, 500, 20):
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
            a = ancestral_step(ddpm, eps, None, t, x, noise)
            b = ddim.step(eps, t, x, eta=1.0, variance_noise=noise).prev_sample
            differs.append(not torch.allclose(a, b, rtol=1e-4, atol=1e-5))
        assert any(differs) == clip, clip


def test_ancestral_samples_do_not_depend_on_the_batch_size():
    from domainstudio.sampling import ddim_sample

    unet, sched = tiny_unet(), build_scheduler(SchedulerConfig())
    cfg = SampleConfig(n_samples=3, ddim_steps=20, batch_size=3, sampler="ddpm", precision="fp32", device="cpu")
    one = ddim_sample(unet, sched, cfg)
    other = ddim_sample(unet, sched, dataclasses.replace(cfg, batch_size=2))
    np.testing.assert_array_equal(one, other)
    assert not np.array_equal(one, ddim_sample(unet, sched, dataclasses.replace(cfg, sampler="ddim")))
    with pytest.raises(ValueError, match="sample.sampler"):
        SampleConfig(sampler="euler")


def test_the_workflow_gives_the_official_rows_adapt_official(tmp_path):
    """The adapt and sample jobs of the released code's rows get adapt.official (its train block over adapt.train,
    its sample block over sample); config/official.yaml adds both rows to tables 1 and 2."""
    import re

    project = copy_project(tmp_path / "p")
    targets = [f"{kind}/faces/babies/10shot/{m}/seed1" for kind in ("models", "samples") for m in (*OFFICIAL_SETTINGS_METHODS, "domainstudio")]
    out = run(["snakemake", "-n", "-p", *targets, "--configfile", "config/official.yaml"], cwd=project).stdout
    adapt = {m.group(1): json.loads(m.group(2)) for m in re.finditer(r"adapt .*?--method (\S+) .*?--config-json '(\{.*?\})' ", out)}
    sample = {m.group(1): json.loads(m.group(2)) for m in re.finditer(r"sample --model models/faces/babies/10shot/(\S+)/seed1 .*?--config-json '(\{.*?\})' ", out)}
    for method in OFFICIAL_SETTINGS_METHODS:
        assert adapt[method] == {**adapt_settings(PARAMS["adapt"], method), "train": {**adapt_settings(PARAMS["adapt"], method)["train"], "seed": 1}}
        assert sample[method] == {**sample_settings(PARAMS, method), "seed": 1}
    assert adapt["domainstudio"]["train"] == {**PARAMS["adapt"]["train"], "seed": 1}
    assert sample["domainstudio"] == {**PARAMS["sample"], "seed": 1}
    plan = run(["snakemake", "-n", "results/table1.csv", "--configfile", "config/official.yaml"], cwd=project).stdout
    assert "domainstudio-official" in plan and "ddpm-ft-official" in plan
