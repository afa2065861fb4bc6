"""The paper-scale overlays (config/paper.yaml, config/paper_church.yaml) on local stand-ins: image folders under
data/<world>/ and a small UNet saved like the hub's google/ddpm-ema-*-256 repos (a bare UNet2DModel folder with an
attention level, .bin weights and an old-style scheduler_config.json). The hub itself is never contacted."""
import json

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel
from PIL import Image

from domainstudio.cli import main
from domainstudio.models.source import SourceModelError, image_size, load_source
from tests.conftest import copy_project, run

# The keys of google/ddpm-ema-celebahq-256's scheduler_config.json (written by diffusers 0.1.1).
HUB_SCHEDULER = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.1.1", "beta_end": 0.02, "beta_schedule": "linear",
                 "beta_start": 0.0001, "clip_sample": True, "num_train_timesteps": 1000, "trained_betas": None,
                 "variance_type": "fixed_small"}
PAPER_DOMAINS = {"ffhq": ["babies", "sunglasses", "raphael"], "church": ["haunted", "landscapes"]}


def hub_like_unet(size=32, out_channels=3) -> UNet2DModel:
    """google/ddpm-ema-*-256's architecture options (attention at one level, padding 0, freq_shift 1, ...), tiny."""
    torch.manual_seed(0)
    return UNet2DModel(sample_size=size, in_channels=3, out_channels=out_channels, layers_per_block=1,
                       block_out_channels=(8, 8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), downsample_padding=0,
                       flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=4, attention_head_dim=None)


def save_hub_like(folder, unet=None):
    (unet or hub_like_unet()).save_pretrained(folder, safe_serialization=False)
    (folder / "scheduler_config.json").write_text(json.dumps(HUB_SCHEDULER))
    return folder


def image_folders(project, world, domains, size=32, reference=3):
    for domain in domains:
        for sub, n in (("10shot", 10), ("reference", reference)):
            folder = project / "data" / world / domain / sub
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def test_hub_like_folder_loads_and_runs(tmp_path):
    unet, scheduler = load_source(save_hub_like(tmp_path / "hub"))
    assert "AttnDownBlock2D" in unet.config.down_block_types and image_size(unet) == (32, 32)
    assert scheduler.config.variance_type == "fixed_small" and scheduler.config.prediction_type == "epsilon"
    with torch.no_grad():
        assert unet(torch.randn(2, 3, 32, 32), torch.tensor([1, 999])).sample.shape == (2, 3, 32, 32)


def test_learned_variance_model_is_refused(tmp_path):
    save_hub_like(tmp_path / "six", hub_like_unet(out_channels=6))
    with pytest.raises(SourceModelError, match="6 output channels .* only 'learned_range'"):
        load_source(tmp_path / "six")


def test_unreachable_hub_id_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code = main(["import-source", "--pretrained", "google/ddpm-ema-church-256", "--out", str(tmp_path / "m"), "--resolution", "256"])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "m").exists()
    assert err.startswith("error: cannot load source model 'google/ddpm-ema-church-256'") and "Traceback" not in err
    assert "hf download google/ddpm-ema-church-256 --local-dir models/ddpm-ema-church-256" in err


@pytest.mark.slow
def test_paper_overlays_plan_with_standin_folders(tmp_path):
    project = copy_project(tmp_path / "project")
    overlays = {"ffhq": ["config/paper.yaml"], "church": ["config/paper.yaml", "config/paper_church.yaml"],
                "ffhq-adm": ["config/paper.yaml", "config/paper_adm.yaml"]}
    (project / "models/adm").mkdir(parents=True)
    (project / "models/adm/ffhq.pt").write_bytes(b"stand-in")  # the plan needs the file to exist, not to load
    for name, files in overlays.items():
        world = name.split("-")[0]
        if not (project / "data" / world).exists():
            image_folders(project, world, PAPER_DOMAINS[world], reference=1)
        out = run(["snakemake", "-n", "--cores", "1", "--configfile", *files], cwd=project).stdout
        counts = dict(line.split()[:2] for line in out.splitlines() if line.split()[:1] and line.split()[0] in
                      ("import_source", "adapt", "sample", "sample_source", "evaluate", "table", "render_source",
                       "pretrain_source", "train_backbone"))
        ablation_extra = 2 * (2 if world == "ffhq" else 1)  # ds-img, ds-img-hf on report.ablation.domains
        runs = str(2 * len(PAPER_DOMAINS[world]) + ablation_extra)
        assert counts == {"import_source": "1", "adapt": runs, "sample": runs, "sample_source": "1", "evaluate": runs,
                          "table": "4"}, out
    # A target folder that is not there stops the plan with the folder named.
    missing = run(["snakemake", "-n", "--cores", "1", "--configfile", "config/paper.yaml", "--config", "domains=[babies,cats]"],
                  cwd=project, check=False)
    assert missing.returncode != 0 and "data/ffhq/cats/10shot" in missing.stdout + missing.stderr
    (project / "models/adm/ffhq.pt").unlink()  # the ADM variant without its checkpoint: stopped, the file named
    missing = run(["snakemake", "-n", "--cores", "1", "--configfile", "config/paper.yaml", "config/paper_adm.yaml"], cwd=project, check=False)
    assert missing.returncode != 0 and "models/adm/ffhq.pt" in missing.stdout + missing.stderr


@pytest.mark.slow
def test_paper_loading_paths_run_on_standins(tmp_path):
    """import_source (hub-like folder) -> adapt -> sample on image folders, at 32 px instead of 256 px; then the
    documented `dvc add data/ffhq` works next to the workflow's own DVC stage."""
    project = copy_project(tmp_path / "project")
    image_folders(project, "ffhq", ["babies"])
    hub = save_hub_like(tmp_path / "ddpm-ema-celebahq-256")
    overlay = tmp_path / "standin.yaml"
    overlay.write_text(json.dumps({"resolution": 32, "domains": ["babies"], "methods": ["domainstudio"],
                                   "source": {"pretrained": str(hub)},
                                   "adapt": {"train": {"steps": 2, "batch_size": 3, "checkpoint_every": 0}},
                                   "sample": {"n_samples": 4, "ddim_steps": 2, "batch_size": 4},
                                   "report": {"ablation": {"domains": ["babies"]}, "shots": {"domains": ["babies"]}}}))
    target = "samples/ffhq/babies/10shot/domainstudio/seed0"
    run(["snakemake", target, "--cores", "2", "--configfile", "config/paper.yaml", str(overlay)], cwd=project)

    imported = json.loads((project / "models/ffhq/source/unet/config.json").read_text())
    assert imported["down_block_types"] == list(hub_like_unet().config.down_block_types)
    assert len(list((project / target / "images").glob("*.png"))) == 4
    assert json.loads((project / target / "sampling.json").read_text())["precision"] == "bf16"

    env = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@localhost", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@localhost", "DVC_NO_ANALYTICS": "1"}
    run(["git", "init", "-q"], cwd=project, env=env)  # the repository is a DVC project as cloned: no dvc init
    run(["dvc", "add", "data/ffhq"], cwd=project, env=env)
    assert (project / "data/ffhq.dvc").exists()
    assert run(["git", "check-ignore", "-q", "data/ffhq.dvc"], cwd=project, check=False).returncode == 1  # committable
