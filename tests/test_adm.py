"""guided-diffusion (ADM) source checkpoints, against guided-diffusion's own code (the guided-diffusion-sdk package,
a test-only dependency): the conversion to diffusers, L_vlb, their use by the objective and the sampler, the CLI,
and the smoke workflow adapting and sampling from a converted checkpoint."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml

from domainstudio.adapt.losses import vlb_term
from domainstudio.adapt.objectives import DomainStudio, DomainStudioOptions, DomainStudioWeights, noised_batch
from domainstudio.models import SourceModelError
from domainstudio.models.adm import AdmFlags, build_adm_scheduler, load_adm_checkpoint
from domainstudio.models.source import learns_variance, load_source
from tests.conftest import ROOT, copy_project, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # guided-diffusion's torch.cuda.amp decorators
    from guided_diffusion.script_util import create_model_and_diffusion, model_and_diffusion_defaults

SMALL = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2,2", num_head_channels=16)
VARIANTS = {  # DomainStudio's flags (resblock up/down, attention at 32, 16, 8, legacy qkv order), and the other choices
    "domainstudio": dict(attention_resolutions="32,16,8", resblock_updown=True, use_new_attention_order=False),
    "conv-sampling-new-qkv": dict(attention_resolutions="16", resblock_updown=False, use_new_attention_order=True),
}


def guided_diffusion_model(variant: str, seed: int = 0):
    """guided-diffusion's UNetModel and GaussianDiffusion for the small flags, every weight drawn at random (its
    zero-initialised output layers would make every output 0 and hide a wrong mapping)."""
    args = model_and_diffusion_defaults()
    args.update(**SMALL, **VARIANTS[variant], use_scale_shift_norm=True, learn_sigma=True, diffusion_steps=1000, noise_schedule="linear")
    torch.manual_seed(seed)
    model, diffusion = create_model_and_diffusion(**args)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval(), diffusion


def write_checkpoint(path, variant="domainstudio", seed=0):
    model, _ = guided_diffusion_model(variant, seed)
    torch.save(model.state_dict(), path)
    return model


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_converted_model_predicts_what_guided_diffusion_predicts(tmp_path, variant):
    model = write_checkpoint(tmp_path / "adm.pt", variant)
    unet, scheduler = load_adm_checkpoint(tmp_path / "adm.pt", AdmFlags(**SMALL, **VARIANTS[variant]))
    assert learns_variance(unet) and scheduler.config.variance_type == "learned_range"
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn((4, 3, 32, 32), generator=g), torch.tensor([0, 10, 500, 999])
    with torch.no_grad():
        theirs, ours = model(x, t), unet.eval()(x, t).sample
    assert ours.shape == theirs.shape == (4, 6, 32, 32)
    for half in (slice(0, 3), slice(3, 6)):  # eps, then the variance interpolation v
        assert torch.allclose(ours[:, half], theirs[:, half], atol=1e-5, rtol=0), (ours[:, half] - theirs[:, half]).abs().max()


def test_the_schedule_is_guided_diffusions():
    _, diffusion = guided_diffusion_model("domainstudio")
    scheduler = build_adm_scheduler(AdmFlags(**SMALL))
    assert torch.allclose(scheduler.betas.double(), torch.from_numpy(diffusion.betas), rtol=1e-6, atol=0)


def test_vlb_term_equals_guided_diffusions_vb_term():
    """L_t on the same x0, t and noise as GaussianDiffusion.training_losses: its "vb" term (bits per dimension, the
    decoder NLL at t = 0, the KL elsewhere, the mean from the detached eps)."""
    model, diffusion = guided_diffusion_model("domainstudio")
    scheduler = build_adm_scheduler(AdmFlags(**SMALL))
    g = torch.Generator().manual_seed(2)
    x0 = torch.randint(0, 256, (6, 3, 32, 32), generator=g).float() / 127.5 - 1
    t, noise = torch.tensor([0, 1, 5, 100, 500, 999]), torch.randn((6, 3, 32, 32), generator=g)
    with torch.no_grad():
        vb = diffusion.training_losses(model, x0, t, noise=noise)["vb"]
        x_t = diffusion.q_sample(x0, t, noise=noise)  # float64 schedule as theirs; add_noise agrees to 4e-6
        out = model(x_t, t)
        ours = vlb_term(x0, x_t, out[:, :3], out[:, 3:], scheduler.betas, t)
    assert torch.allclose(ours, vb, rtol=1e-5, atol=0), (ours, vb)


def test_the_objective_adds_l1_times_the_bound_and_trains_only_the_variance_with_it(tmp_path):
    """L = L_simple + l1 T E[L_t] for a learned-variance source (guided-diffusion's hybrid loss at l1 = 0.001), and the
    L_vlb gradient reaches the variance half only: with the noise half's loss weight 0 the eps output gets none."""
    write_checkpoint(tmp_path / "adm.pt")
    unet, scheduler = load_adm_checkpoint(tmp_path / "adm.pt", AdmFlags(**SMALL))
    x0 = torch.rand((4, 3, 32, 32), generator=torch.Generator().manual_seed(3)) * 2 - 1
    objective = DomainStudio(scheduler, None, DomainStudioWeights(l_vlb=0.001), DomainStudioOptions(), batch_size=4)
    loss, terms = objective(unet, x0, torch.Generator().manual_seed(4))
    b = noised_batch(scheduler, x0, torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = unet(b.x_t, b.t).sample
    by_hand = 1000 * vlb_term(b.x0, b.x_t, out[:, :3], out[:, 3:], scheduler.betas, b.t).mean()
    simple = torch.nn.functional.mse_loss(out[:, :3], b.noise)
    assert terms["l_vlb"] == pytest.approx(by_hand.item(), rel=1e-5)
    assert loss.item() == pytest.approx((simple + 0.001 * by_hand).item(), rel=1e-5)
    # The eps half's weights get no gradient from L_vlb: only conv_out's rows of v move.
    vlb_only = DomainStudio(scheduler, None, DomainStudioWeights(l_vlb=1.0), DomainStudioOptions(), batch_size=4)
    unet.zero_grad()
    _, terms = vlb_only(unet, x0, torch.Generator().manual_seed(4))
    loss_v = 1000 * vlb_term(b.x0, b.x_t, *unet(b.x_t, b.t).sample.split(3, dim=1), scheduler.betas, b.t).mean()
    loss_v.backward()
    assert unet.conv_out.weight.grad[:3].abs().max() == 0 and unet.conv_out.weight.grad[3:].abs().max() > 0


def test_ddim_samples_with_the_noise_half(tmp_path):
    from domainstudio.sampling import SampleConfig, ddim_sample

    write_checkpoint(tmp_path / "adm.pt")
    unet, scheduler = load_adm_checkpoint(tmp_path / "adm.pt", AdmFlags(**SMALL))

    class NoiseHalf(torch.nn.Module):  # the same network, its variance channels cut off
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.config = type("C", (), {**dict(inner.config), "out_channels": 3})()

        def forward(self, x, t):
            return type("O", (), {"sample": self.inner(x, t).sample[:, :3]})()

    cfg = SampleConfig(n_samples=4, ddim_steps=3, batch_size=4, precision="fp32", device="cpu")
    assert (ddim_sample(unet, scheduler, cfg) == ddim_sample(NoiseHalf(unet), scheduler, cfg)).all()


def test_import_source_converts_once_and_names_what_is_wrong(tmp_path):
    from domainstudio.cli import main

    write_checkpoint(tmp_path / "adm.pt")
    flags = json.dumps({**SMALL, **VARIANTS["domainstudio"]})
    assert main(["import-source", "--pretrained", str(tmp_path / "adm.pt"), "--out", str(tmp_path / "source"), "--resolution", "32",
                 "--adm-json", flags]) == 0
    unet, scheduler = load_source(tmp_path / "source")  # the usual source folder from here on
    assert learns_variance(unet) and scheduler.config.variance_type == "learned_range"
    wrong = json.dumps({**SMALL, "num_channels": 64})
    assert main(["import-source", "--pretrained", str(tmp_path / "adm.pt"), "--out", str(tmp_path / "x"), "--adm-json", wrong]) == 2
    assert not (tmp_path / "x").exists()
    with pytest.raises(SourceModelError, match="no guided-diffusion checkpoint at .*missing.pt"):
        load_adm_checkpoint(tmp_path / "missing.pt", AdmFlags(**SMALL))


def test_a_learned_variance_unet_needs_a_learned_range_scheduler(tmp_path):
    from domainstudio.models.source import save_source

    write_checkpoint(tmp_path / "adm.pt")
    unet, scheduler = load_adm_checkpoint(tmp_path / "adm.pt", AdmFlags(**SMALL))
    scheduler.register_to_config(variance_type="fixed_small")
    save_source(unet, scheduler, tmp_path / "source")
    with pytest.raises(SourceModelError, match="learned_range"):
        load_source(tmp_path / "source")


@pytest.mark.slow
def test_smoke_workflow_adapts_and_samples_from_a_guided_diffusion_checkpoint(tmp_path):
    """config/smoke_adm.yaml: the smoke run's diffusion rows from a converted ADM checkpoint (a random one here)."""
    project = copy_project(tmp_path / "project")
    overlay = yaml.safe_load((ROOT / "config" / "smoke_adm.yaml").read_text())
    (project / overlay["source"]["pretrained"]).parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(project / overlay["source"]["pretrained"])
    run(["snakemake", "--cores", "2", "results/table1.csv", "--configfile", "config/smoke.yaml", "config/smoke_adm.yaml"], cwd=project)
    record = json.loads((project / "models/faces/babies/5shot/domainstudio/seed0/adaptation.json").read_text())
    assert record["weights"]["l_vlb"] == 0.001 and record["learned_variance"] is True
    log = (project / "models/faces/babies/5shot/domainstudio/seed0/train_log.csv").read_text()
    assert "l_vlb" in log.splitlines()[0]
    rows = [r for r in (project / "results/table1.csv").read_text().splitlines()[1:] if ",measured," in r or "measured" in r]
    assert rows and (project / "samples/faces/babies/5shot/ddpm-ft/seed0/grid.png").exists()


def test_the_gpu_check_runs_in_tiny_form(tmp_path):
    """benchmarks/gpu_check.py, prepared for a GPU, runs its measurements on tiny UNets on the CPU."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check import main as gpu_check

    report = gpu_check(["--tiny", "--no-workflow", "--out", str(tmp_path / "check.json"), "--steps", "1", "--batch", "3",
                        "--sample-batch", "2", "--ddim-steps", "2"])
    assert json.loads((tmp_path / "check.json").read_text()) == json.loads(json.dumps(report))
    assert set(report["models"]) == {"adm-ffhq-256", "ddpm-ema-celebahq-256"}
    for entry in report["models"].values():
        assert set(entry["adaptation"]) == {f"{m}/{p}" for m in ("ddpm-ft", "domainstudio") for p in ("fp32", "bf16")}
        assert all(r["seconds_per_step"] > 0 for r in entry["adaptation"].values())
        assert all(r["images_per_second"] > 0 for r in entry["sampling"].values())
