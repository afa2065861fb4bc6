"""Released artifacts: manifests checked against their files, the committed releases intact, the default configuration
loading them (no source training, no backbone training in its DAG), and config/release.yaml regenerating them."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from domainstudio.manifest import ReleaseError, file_records, verify_release, write_manifest
from tests.conftest import ROOT, copy_project, run

RELEASES = sorted(p.parent for p in (ROOT / "releases").rglob("manifest.json"))
MAX_RELEASE_BYTES = 50 * 2**20


def _folder(tmp_path) -> Path:
    folder = tmp_path / "release"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "config.json").write_text('{"a": 1}')
    write_manifest(folder, {"name": "x", "command": "snakemake --cores all x"})
    return folder


def test_manifest_holds_sha256_and_size_of_every_file(tmp_path):
    import hashlib

    folder = _folder(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"] == {
        "config.json": {"sha256": hashlib.sha256(b'{"a": 1}').hexdigest(), "bytes": 8},
        "unet/weights.bin": {"sha256": hashlib.sha256(bytes(range(256)) * 4).hexdigest(), "bytes": 1024},
    }
    assert manifest["total_bytes"] == 1032 and verify_release(folder)["name"] == "x"


def test_a_replaced_missing_or_extra_file_is_named(tmp_path):
    folder = _folder(tmp_path)
    weights = folder / "unet" / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")  # one byte changed, same size
    with pytest.raises(ReleaseError, match=r"unet/weights.bin: sha256 .* differs.*\n.*snakemake --cores all x"):
        verify_release(folder)
    weights.unlink()
    with pytest.raises(ReleaseError, match="unet/weights.bin: missing"):
        verify_release(folder)
    write_manifest(folder, {"name": "x"})
    (folder / "extra.txt").write_text("?")
    with pytest.raises(ReleaseError, match="extra.txt: not in the manifest"):
        verify_release(folder)
    with pytest.raises(ReleaseError, match="is not a release folder"):
        verify_release(tmp_path)


def test_committed_releases_match_their_manifests_and_fit_the_size_budget():
    kinds = {json.loads((r / "manifest.json").read_text())["kind"] for r in RELEASES}
    assert {"source DDPM (diffusers DDPMPipeline)", "embedded metric backbone"} <= kinds, RELEASES
    total = 0
    for release in RELEASES:
        manifest = verify_release(release)
        total += manifest["total_bytes"]
        for key in ("command", "params", "commit", "machine", "steps", "training_seconds", "quality"):
            assert manifest.get(key) is not None, (release, key)
        assert _regenerates(manifest["command"], release), manifest["command"]
    assert total <= MAX_RELEASE_BYTES


def _regenerates(command: str, release: Path) -> bool:
    """Whether ``command``, read as Snakemake reads it, targets ``release`` (releases/<world>/<res>px/<name>) with
    config/release.yaml last and, before it, the overlays that set the release's world (none for params.yaml's)."""
    import shlex

    from snakemake.cli import get_argument_parser

    words = shlex.split(command)
    args = get_argument_parser().parse_args(words[1:])
    configfiles = [str(c) for c in args.configfile or []]
    world = yaml.safe_load((ROOT / "params.yaml").read_text())["world"]
    for overlay in configfiles[:-1]:
        world = yaml.safe_load((ROOT / overlay).read_text()).get("world", world)
    return (words[0] == "snakemake" and [str(t) for t in args.targets] == [release.relative_to(ROOT).as_posix().replace("releases/", "results/releases/", 1)]
            and configfiles[-1:] == ["config/release.yaml"] and world == release.relative_to(ROOT).parts[1])


def test_the_recorded_command_is_read_with_its_target():
    assert _regenerates("snakemake --cores all results/releases/faces/32px/gan --configfile config/release.yaml", ROOT / "releases/faces/32px/gan")
    assert not _regenerates("snakemake --cores all --configfile config/release.yaml results/releases/faces/32px/gan", ROOT / "releases/faces/32px/gan")
    churches = ROOT / "releases/churches/32px/gan"
    assert _regenerates("snakemake --cores all results/releases/churches/32px/gan --configfile config/churches.yaml config/release.yaml", churches)
    assert not _regenerates("snakemake --cores all results/releases/churches/32px/gan --configfile config/release.yaml config/churches.yaml", churches)
    assert not _regenerates("snakemake --cores all results/releases/churches/32px/gan --configfile config/release.yaml", churches)


def test_default_configuration_loads_the_releases():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["source"]["kind"] == "pretrained"
    for path in (params["source"]["pretrained"], params["evaluate"]["embedded_backbone"], params["gan"]["pretrained"]):
        assert (ROOT / path) in RELEASES
    photos = yaml.safe_load((ROOT / "config" / "photos.yaml").read_text())["evaluate"]["embedded_backbone"]
    assert (ROOT / photos) in RELEASES and "photos" in json.loads((ROOT / photos / "backbone.json").read_text())["report"]["domains"]


def test_a_tampered_release_is_refused_by_the_loaders(tmp_path):
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone
    from domainstudio.models import SourceModelError
    from domainstudio.models.source import SchedulerConfig, build_scheduler, load_source, save_source
    from tests.conftest import tiny_unet

    source = tmp_path / "ddpm"
    save_source(tiny_unet(), build_scheduler(SchedulerConfig()), source)
    write_manifest(source, {"name": "ddpm"})
    load_source(source)
    (source / "scheduler" / "scheduler_config.json").write_text("{}")
    with pytest.raises(SourceModelError, match="scheduler_config.json: sha256"):
        load_source(source)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    backbone = tmp_path / "backbone"
    shutil.copytree(ROOT / params["evaluate"]["embedded_backbone"], backbone)
    EmbeddedBackbone.load(backbone)
    (backbone / "backbone.safetensors").write_bytes(b"not weights")
    with pytest.raises(ReleaseError, match="backbone.safetensors: sha256"):
        EmbeddedBackbone.load(backbone)

    from domainstudio.cli import main
    from domainstudio.gan.artifact import build_gan, save_gan
    from domainstudio.gan.networks import GanNetworkConfig

    gan = tmp_path / "gan"
    gan.mkdir()
    save_gan(gan, *build_gan(GanNetworkConfig(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=16), 16, 0))
    write_manifest(gan, {"name": "gan"})
    assert main(["import-gan", "--pretrained", str(gan), "--out", str(tmp_path / "imported"), "--resolution", "16"]) == 0
    weights = (gan / "gan.pt").read_bytes()
    (gan / "gan.pt").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))  # one bit of the last byte flipped
    with pytest.raises(SystemExit, match=r"gan.pretrained: release (.|\n)*/gan.pt: sha256"):
        main(["import-gan", "--pretrained", str(gan), "--out", str(tmp_path / "imported2"), "--resolution", "16"])
    assert not (tmp_path / "imported2").exists()


def test_main_job_dag_trains_no_source_model_and_no_backbone(tmp_path):
    project = copy_project(tmp_path / "project")
    def jobs(*overlay):
        out = run(["snakemake", "-n", "results/table1.csv", "--quiet", "rules", *overlay], cwd=project).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip() and not line.startswith(("job", "-", "total"))}

    main_job, comparison = jobs(), jobs("--configfile", "config/baselines.yaml")
    assert {"import_source", "import_backbone", "adapt", "sample", "evaluate", "table"} <= main_job
    assert not {"import_source_gan", "adapt_gan", "render_source"} & main_job, main_job  # the diffusion rows only
    assert {"import_source_gan", "adapt_gan", "ewc_fisher", "render_source"} <= comparison
    for dag in (main_job, comparison):
        assert not {"pretrain_source", "train_backbone", "pretrain_source_gan"} & dag, dag


def test_a_backbone_trained_on_the_held_out_domain_is_released_under_its_own_name(tmp_path):
    """config/photos.yaml before config/release.yaml writes the backbone release its own manifest's command names."""
    project = copy_project(tmp_path / "project")
    overlays = ["--configfile", "config/photos.yaml", "config/release.yaml"]
    dag = run(["snakemake", "-n", "results/releases/faces/32px/metric_backbone_with_photos", "--quiet", "rules", *overlays],
              cwd=project).stdout
    assert "train_backbone" in dag and "release_backbone" in dag
    main_name = run(["snakemake", "-n", "results/releases/faces/32px/metric_backbone", *overlays], cwd=project, check=False)
    assert main_name.returncode != 0 and "MissingRuleException" in main_name.stdout + main_name.stderr
    # a world of one's own images has no held-out domain: its backbone release keeps the plain name
    from PIL import Image

    for folder, n in (("data/mine/source", 4), ("data/mine/cats/1shot", 1)):
        (project / folder).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32), (i, 0, 0)).save(project / folder / f"{i:03d}.png")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"world": "mine", "domains": ["cats"], "shots": [1], "methods": ["ddpm-ft"],
                                    "data": {"kind": "folders"}, "t2i": {"enabled": False},
                                    "evaluate": {"backbone": "alex-random", "fid_backbone": "inception"},
                                    "report": {"ablation": {"domains": ["cats"]}, "shots": {"domains": ["cats"], "shots": [1]}}}))
    run(["snakemake", "-n", "models/mine/source", "--configfile", "config/smoke.yaml", str(mine)], cwd=project)


@pytest.mark.slow
def test_release_configuration_regenerates_the_releases_on_the_smoke_world(tmp_path):
    """config/release.yaml over the smoke overlay: the three releases written, verified, and loadable as the defaults."""
    project = copy_project(tmp_path / "project")
    targets = ["results/releases/faces/32px/ddpm", "results/releases/faces/32px/metric_backbone", "results/releases/faces/32px/gan"]
    run(["snakemake", "--cores", "2", *targets, "--configfile", "config/smoke.yaml", "config/release.yaml"], cwd=project)
    ddpm, backbone, gan = (verify_release(project / t) for t in targets)
    smoke = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    assert ddpm["steps"] == smoke["source"]["train"]["steps"] and ddpm["params"]["source"]["kind"] == "pretrain"
    every = smoke["source"]["quality"]["snapshot_every"]
    curve = (project / targets[0] / "quality_curve.csv").read_text().splitlines()
    assert len(curve) == 1 + smoke["source"]["train"]["steps"] // every  # snapshots before the last step, then the release
    assert ddpm["quality"]["fid"] > 0 and ddpm["quality"]["floor"] > 0 and ddpm["training_seconds"] > 0
    assert set(file_records(project / targets[0])) >= {"unet/diffusion_pytorch_model.safetensors", "samples.png", "quality_curve.png"}
    assert backbone["quality"]["held_out_domain_accuracy"] and backbone["training_seconds"] > 0
    gan_curve = (project / targets[2] / "quality_curve.csv").read_text().splitlines()
    assert gan["steps"] == smoke["gan"]["pretrain"]["steps"] and len(gan_curve) == 1 + gan["steps"] // smoke["gan"]["quality"]["snapshot_every"]
    assert gan["quality"]["fid"] > 0 and "ddim_steps" not in gan["quality"] and set(gan["parameters"]) == {"generator", "discriminator"}
    import torch

    for state, steps in (("source.pt", ddpm["steps"]), ("source_gan.pt", gan["steps"])):  # kept: raising steps continues them
        assert torch.load(project / "checkpoints/faces" / state, weights_only=False)["step"] == steps
    # The regenerated releases are what a configuration loads like the committed ones (smoke world, so a dry run).
    overlay = tmp_path / "use_releases.yaml"
    overlay.write_text(yaml.safe_dump({"source": {"kind": "pretrained", "pretrained": targets[0]},
                                       "evaluate": {"embedded_backbone": targets[1]}, "gan": {"pretrained": targets[2]}}))
    run(["snakemake", "--cores", "1", "models/faces/source", "models/faces/metric_backbone", "models/faces/source_gan",
         "--forcerun", "import_source", "import_backbone", "import_source_gan", "--configfile", "config/smoke.yaml", str(overlay)],
        cwd=project)
    assert (project / "models/faces/source_gan/gan.pt").read_bytes() == (project / targets[2] / "gan.pt").read_bytes()
    import torch

    from domainstudio.models.source import load_source

    imported, released = (load_source(project / f)[0].state_dict() for f in ("models/faces/source", targets[0]))
    assert imported.keys() == released.keys() and all(torch.equal(imported[k], released[k]) for k in imported)
    for name in ("backbone.json", "backbone.safetensors"):
        assert (project / "models/faces/metric_backbone" / name).read_bytes() == (project / targets[1] / name).read_bytes()


def test_quality_curve_measures_a_snapshot_once_per_weights_backbone_and_settings(tmp_path, monkeypatch):
    """A release re-measures only the snapshots it has not measured with the same backbone and settings (a cache in
    the snapshot folder), and always measures the final model."""
    import numpy as np

    import domainstudio.release.quality_curve as sq
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

    sampled = []

    class Quality:
        floor = 0.5

        def __init__(self, *args):
            pass

        def fid(self, images):
            return float(images.mean())

    monkeypatch.setattr(sq, "SourceQuality", Quality)
    monkeypatch.setattr(EmbeddedBackbone, "load", staticmethod(lambda folder: type("B", (), {"fid_features": None})()))
    monkeypatch.setattr(sq, "load_model_or_snapshot", lambda folder, cfg: (folder, None))

    def sample(folder, scheduler, cfg):
        sampled.append(folder.name)
        return np.full((4, 2, 2, 3), sq.trained_steps(folder) / 1000)

    monkeypatch.setattr(sq, "sample_source", sample)
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "backbone.safetensors").write_bytes(b"one")
    snapshots = [tmp_path / "snapshots" / f"step{n}" for n in (2000, 4000)]
    model = tmp_path / "model"
    for folder in [*snapshots, model]:
        folder.mkdir(parents=True)
    for folder in snapshots:
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    (model / "train_log.csv").write_text("step,loss\n6000,0.1\n")

    def curve(cfg=sq.SourceQualityConfig(samples=4)):
        sampled.clear()
        rows, _ = sq.quality_curve([*snapshots, model], backbone, "faces", 32, 0, cfg, None)
        return [(r["step"], r["fid"]) for r in rows], list(sampled)

    assert curve() == ([(2000, 2.0), (4000, 4.0), (6000, 6.0)], ["step2000", "step4000", "model"])
    assert curve() == ([(2000, 2.0), (4000, 4.0), (6000, 6.0)], ["model"])  # snapshots read back, same values
    assert curve(sq.SourceQualityConfig(samples=4, ddim_steps=50))[1] == ["step2000", "step4000", "model"]
    (backbone / "backbone.safetensors").write_bytes(b"two")
    assert curve(sq.SourceQualityConfig(samples=4, ddim_steps=50))[1] == ["step2000", "step4000", "model"]
    assert not (model / sq.QUALITY_CACHE).exists()
    (snapshots[1] / "diffusion_pytorch_model.safetensors").write_bytes(b"retrained")  # a restarted training
    assert curve(sq.SourceQualityConfig(samples=4, ddim_steps=50))[1] == ["step4000", "model"]
