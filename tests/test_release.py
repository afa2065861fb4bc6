"""Released artifacts: manifests checked against their files, the committed releases intact, the default configuration
loading them (no source training, no backbone training in its DAG), and config/release.yaml regenerating them."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from domainstudio.release import ReleaseError, file_records, verify_release, write_manifest
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
        assert "--configfile config/release.yaml" in manifest["command"]
    assert total <= MAX_RELEASE_BYTES


def test_default_configuration_loads_the_releases():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["source"]["kind"] == "pretrained"
    for path in (params["source"]["pretrained"], params["evaluate"]["embedded_backbone"]):
        assert (ROOT / path) in RELEASES


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


def test_main_job_dag_trains_no_source_model_and_no_backbone(tmp_path):
    project = copy_project(tmp_path / "project")
    out = run(["snakemake", "-n", "results/table1.csv", "--quiet", "rules"], cwd=project).stdout
    jobs = {line.split()[0] for line in out.splitlines() if line.strip() and not line.startswith(("job", "-", "total"))}
    assert {"import_source", "import_backbone", "adapt", "evaluate"} <= jobs
    assert not {"pretrain_source", "train_backbone"} & jobs, jobs


@pytest.mark.slow
def test_release_configuration_regenerates_both_releases_on_the_smoke_world(tmp_path):
    """config/release.yaml over the smoke overlay: both releases written, verified, and loadable as the defaults."""
    project = copy_project(tmp_path / "project")
    targets = ["results/releases/faces/32px/ddpm", "results/releases/faces/32px/metric_backbone"]
    run(["snakemake", "--cores", "2", *targets, "--configfile", "config/smoke.yaml", "config/release.yaml"], cwd=project)
    ddpm, backbone = (verify_release(project / t) for t in targets)
    smoke = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    assert ddpm["steps"] == smoke["source"]["train"]["steps"] and ddpm["params"]["source"]["kind"] == "pretrain"
    every = smoke["source"]["quality"]["snapshot_every"]
    curve = (project / targets[0] / "quality_curve.csv").read_text().splitlines()
    assert len(curve) == 1 + smoke["source"]["train"]["steps"] // every  # snapshots before the last step, then the release
    assert ddpm["quality"]["fid"] > 0 and ddpm["quality"]["floor"] > 0 and ddpm["training_seconds"] > 0
    assert set(file_records(project / targets[0])) >= {"unet/diffusion_pytorch_model.safetensors", "samples.png", "quality_curve.png"}
    assert backbone["quality"]["held_out_domain_accuracy"] and backbone["training_seconds"] > 0
    # The regenerated releases are what a configuration loads like the committed ones (smoke world, so a dry run).
    overlay = tmp_path / "use_releases.yaml"
    overlay.write_text(yaml.safe_dump({"source": {"kind": "pretrained", "pretrained": targets[0]},
                                       "evaluate": {"embedded_backbone": targets[1]}}))
    run(["snakemake", "--cores", "1", "models/faces/source", "models/faces/metric_backbone", "--forcerun", "import_source",
         "import_backbone", "--configfile", "config/smoke.yaml", str(overlay)], cwd=project)
    import torch

    from domainstudio.models.source import load_source

    imported, released = (load_source(project / f)[0].state_dict() for f in ("models/faces/source", targets[0]))
    assert imported.keys() == released.keys() and all(torch.equal(imported[k], released[k]) for k in imported)
    for name in ("backbone.json", "backbone.safetensors"):
        assert (project / "models/faces/metric_backbone" / name).read_bytes() == (project / targets[1] / name).read_bytes()
