"""params.yaml is validated before any job runs: bad values give an error naming the parameter."""
import copy
import shutil
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from domainstudio.params.arguments import cell_seeds
from domainstudio.params.checks import ConfigError, check_config
from tests.conftest import ROOT, copy_project, run

SCHEMA = str(ROOT / "workflow" / "schemas" / "params.schema.yaml")


@pytest.fixture
def params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


# Overlays that go on top of another overlay (README: paper scale; the seeds that decide the claims).
STACKED_ON = {"paper_church.yaml": ["paper.yaml"], "paper_adm.yaml": ["paper.yaml"], "smoke_adm.yaml": ["smoke.yaml"],
              "seeds_decide.yaml": ["seeds3.yaml"], "photos_seeds.yaml": ["photos.yaml"]}


@pytest.mark.parametrize("overlay", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_shipped_configurations_are_valid(params, overlay):
    validate(copy.deepcopy(params), SCHEMA)
    check_config(params)
    merged = copy.deepcopy(params)
    for name in [*STACKED_ON.get(overlay, []), overlay]:
        for key, value in yaml.safe_load((ROOT / "config" / name).read_text()).items():
            merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    validate(merged, SCHEMA)
    if merged["data"]["kind"] == "folders":  # the user's images are not in the repository: the check names the folder
        first = f"data/{merged['world']}/{merged['domains'][0]}/{merged['shots'][0]}shot"
        with pytest.raises(ConfigError, match=first):
            check_config(merged)
    elif merged["source"].get("adm"):  # nor is a guided-diffusion checkpoint: the check names the file
        with pytest.raises(ConfigError, match=merged["source"]["pretrained"]):
            check_config(merged)
    elif missing := [f"{key}: {path} does not exist" for key, path in
                     (("source.pretrained", merged["source"]["pretrained"]),
                      ("evaluate.embedded_backbone", merged["evaluate"]["embedded_backbone"]))
                     if path and not (ROOT / path).is_dir()]:
        # a world whose releases are not all trained yet (config/churches.yaml): the check names every missing folder
        with pytest.raises(ConfigError, match="; ".join(missing)):
            check_config(merged)
    else:
        check_config(merged)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(methods=["magic"]), "magic"),
    (lambda p: p.update(shots=["ten"]), "ten"),
    (lambda p: p["source"]["train"].update(lr="fast"), "fast"),
    (lambda p: p["sample"].update(n_samples=0), "0"),
    (lambda p: p.update(typo_key=1), "typo_key"),
])
def test_schema_rejects(params, edit, message):
    edit(params)
    with pytest.raises(Exception, match=message):
        validate(params, SCHEMA)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.update(domains=["cats"]), r"domains: \['cats'\] are not target domains"),
    (lambda p: p.update(shots=[20]), r"shots: \[20\] not among data.shot_sets"),
    (lambda p: p.update(world="atlantis"), r"world: 'atlantis' is not an embedded world \(available: churches, faces\)"),
    (lambda p: p["evaluate"].update(embedded_backbone="releases/faces/64px/metric_backbone"),
     r"evaluate.embedded_backbone: releases/faces/64px/metric_backbone does not exist"),
    (lambda p: p.update(methods=["ddpm-ft", "cdc"]) or p["gan"].update(pretrained="releases/faces/32px/gan-old"),
     r"gan.pretrained: releases/faces/32px/gan-old does not exist.*results/releases/faces/32px/gan "),
    (lambda p: p["source"].update(pretrained="models/faces/my_ddpm"), r"source.pretrained: models/faces/my_ddpm does not exist"),
    (lambda p: p.update(world="churches", domains=["haunted"]) or p["report"].update(ablation={"domains": ["haunted"], "methods": ["ddpm-ft"]},
                                                                                     shots={"domains": ["haunted"], "shots": [1], "methods": ["ddpm-ft"]}),
     r"evaluate.embedded_backbone: releases/faces/32px/metric_backbone was trained on the embedded world 'faces', not 'churches'"),
    (lambda p: p["source"].update(kind="pretrained", pretrained=None), "source.pretrained"),
    (lambda p: p.update(methods=["domainstudio"]) or p["adapt"]["train"].update(batch_size=1), r"adapt.train.batch_size"),
    (lambda p: p["report"]["ablation"].update(methods=["magic"]), r"report.ablation.methods: unknown method"),
    (lambda p: p["report"]["shots"].update(shots=[1, 3]), r"report.shots.shots: \[3\] not among data.shot_sets"),
    (lambda p: p["report"]["shots"].update(domains=["cats"]), r"report.shots.domains: \['cats'\]"),
    (lambda p: p.update(extra_seeds=[{"domains": ["babies"], "methods": ["tgan"], "seeds": [3]}]),
     r"extra_seeds\[0\].methods: \['tgan'\] are not among methods"),
    (lambda p: p.update(extra_seeds=[{"domains": ["cats"], "methods": ["domainstudio"], "seeds": [3]}]),
     r"extra_seeds\[0\].domains: \['cats'\]"),
])
def test_semantic_checks(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError, match=message):
        check_config(params)


def test_folder_data_is_checked_against_the_shot_count(params, tmp_path):
    from PIL import Image

    params["data"]["kind"] = "folders"
    params["world"] = "mine"
    params["domains"] = ["babies"]
    params["shots"] = [10]
    folder = tmp_path / "data" / "mine" / "babies" / "10shot"
    with pytest.raises(ConfigError, match="does not exist"):
        check_config(params, root=tmp_path)
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    with pytest.raises(ConfigError, match="needs 10 images but .* has 4"):
        check_config(params, root=tmp_path)
    for i in range(4, 10):
        Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    params["source"].update(kind="pretrained", pretrained="google/ddpm-ema-celebahq-256")
    params.pop("report")
    params["methods"] = ["ddpm-ft", "domainstudio", "dpms-ant"]
    with pytest.raises(ConfigError, match=r"\['dpms-ant'\] train a domain classifier .*/data/mine/source \(not found\)"):
        check_config(params, root=tmp_path)
    (tmp_path / "data" / "mine" / "source").mkdir()
    with pytest.raises(ConfigError, match="evaluate.backbone: the embedded backbone is trained on an embedded world"):
        check_config(params, root=tmp_path)
    params["evaluate"].update(backbone="vgg", fid_backbone="inception")
    check_config(params, root=tmp_path)


def test_workflow_refuses_bad_config_before_any_job(tmp_path):
    project = copy_project(tmp_path / "p")
    (project / "bad.yaml").write_text("domains: [babies, cats]\n")
    proc = run(["snakemake", "--cores", "1", "-n", "results/table1.csv", "--configfile", "bad.yaml"], cwd=project, check=False)
    assert proc.returncode != 0
    assert "cats" in proc.stdout + proc.stderr and "are not target domains" in proc.stdout + proc.stderr
    assert not (project / "data").exists()


# The releases a churches run loads, as config/churches.yaml names them (the GAN's is checked where a GAN row runs).
_CHURCHES = yaml.safe_load((ROOT / "config/churches.yaml").read_text())
CHURCHES_RELEASES = {"source.pretrained": _CHURCHES["source"]["pretrained"],
                     "evaluate.embedded_backbone": _CHURCHES["evaluate"]["embedded_backbone"],
                     "gan.pretrained": _CHURCHES["gan"]["pretrained"]}


def test_churches_overlay_stops_before_any_job_without_its_releases(tmp_path):
    """config/churches.yaml loads three releases: with one missing the plan stops with its folder named, before any
    job; with config/release.yaml after it, the plan renders the churches world and trains the three releases."""
    project = copy_project(tmp_path / "p")
    missing = CHURCHES_RELEASES["gan.pretrained"]
    shutil.rmtree(project / missing)
    proc = run(["snakemake", "--cores", "1", "-n", "all", "--configfile", "config/churches.yaml", "config/baselines.yaml"],
               cwd=project, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for key, folder in CHURCHES_RELEASES.items():
        assert (f"{key}: {folder} does not exist" in out) == (folder == missing), (key, out)
    assert not (project / "data").exists()
    targets = [f"results/releases/churches/32px/{name}" for name in ("metric_backbone", "ddpm", "gan")]
    release = run(["snakemake", "--cores", "1", "-n", "-p", *targets, "--configfile", "config/churches.yaml", "config/release.yaml"],
                  cwd=project).stdout
    stats = release.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]  # after the header and its rule
    counts = dict(line.split() for line in stats)
    assert counts == {"render_source": "1", "render_target": "2", "pretrain_source": "1", "pretrain_source_gan": "1",
                      "train_backbone": "1", "release_backbone": "1", "release_source": "1", "release_source_gan": "1",
                      "total": "9"}, release
    assert "domainstudio render-source --world churches --out data/churches/source" in release
    # the backbone learns the churches domains, not the faces domains config/release.yaml names for the faces release
    assert "input: data/churches/source, data/churches/haunted/reference, data/churches/landscapes/reference" in release
    for name in ("haunted", "landscapes"):
        assert f"--world churches --domain {name} --out data/churches/{name}" in release
    # the churches GAN's own recipe: ten times the faces recipe's R1 penalty (docs/releases.md)
    pretrain_gan = next(line for line in release.splitlines() if "domainstudio pretrain-gan" in line)
    assert '"r1_gamma": 0.5' in pretrain_gan and '"channel_base": 1024' in pretrain_gan, pretrain_gan
    # each manifest records the command that rebuilds it, overlays included
    assert "--command 'snakemake --cores all results/releases/churches/32px/ddpm --configfile config/churches.yaml config/release.yaml'" in release


def test_dry_run_and_lint(tmp_path):
    project = copy_project(tmp_path / "p")
    dry = run(["snakemake", "--cores", "1", "-n", "all", "--configfile", "config/baselines.yaml"], cwd=project)
    for rule in ("render_target", "import_source", "adapt", "sample", "import_backbone", "evaluate",
                 "reference_stats", "table", "figures", "report", "import_source_gan", "adapt_gan", "sample_gan"):
        assert rule in dry.stdout
    for rule in ("pretrain_source", "pretrain_source_gan", "train_backbone"):  # every source model comes from a release
        assert f"rule {rule}:" not in dry.stdout and f"localrule {rule}:" not in dry.stdout
    # the source images are rendered for one reader only: dpms-ant's domain classifier, not in the main job's rows
    main_job = run(["snakemake", "--cores", "1", "-n", "results/table1.csv"], cwd=project)
    assert "render_source" not in main_job.stdout
    release = run(["snakemake", "--cores", "1", "-n", "results/releases/faces/32px/ddpm", "results/releases/faces/32px/metric_backbone",
                   "results/releases/faces/32px/gan", "--configfile", "config/release.yaml"], cwd=project)
    for rule in ("render_source", "pretrain_source", "train_backbone", "pretrain_source_gan", "release_source", "release_backbone",
                 "release_source_gan"):
        assert rule in release.stdout
    text = ""
    for overlay in ([], ["--configfile", "config/release.yaml"]):
        lint = run(["snakemake", "--lint", *overlay], cwd=project, check=False)
        text += lint.stdout + lint.stderr
    # The one remaining lint, explained in the README: the software environment is the pinned
    # requirements.txt, installed once, not a conda environment per rule.
    kinds = {line.strip() for line in text.splitlines() if line.strip().startswith("* ")}
    assert kinds <= {"* Specify a conda environment or container for each rule.:"}, text


def test_a_domain_the_backbone_does_not_know_is_refused(params):
    """The main release knows the four domains it was trained on; photos needs the release with it, or one trained here."""
    params["domains"] = ["babies", "photos"]
    with pytest.raises(ConfigError, match=r"evaluate.embedded_backbone: releases/faces/32px/metric_backbone is trained on .*"
                                          r"cannot score \['photos'\].*metric_backbone_with_photos.*embedded_backbone: null"):
        check_config(params, root=ROOT)
    params["evaluate"]["embedded_backbone"] = "releases/faces/32px/metric_backbone_with_photos"
    check_config(params, root=ROOT)
    params["evaluate"]["embedded_backbone"] = None       # trained here: on the four, photos being held out
    with pytest.raises(ConfigError, match=r"backbone_train.domains: null trains the backbone on \['babies', 'sunglasses', "
                                          r"'sketches', 'modigliani'\] and cannot score \['photos'\]"):
        check_config(params, root=ROOT)
    params["evaluate"]["backbone_train"]["domains"] = ["babies", "sunglasses", "photos"]
    check_config(params, root=ROOT)
    params["evaluate"]["backbone_train"]["domains"] = ["babies", "photos"]
    with pytest.raises(ConfigError, match=r"cannot score \['sunglasses'\]"):
        check_config(params, root=ROOT)                  # report.ablation scores sunglasses too


def test_cell_seeds_add_extra_seeds_to_the_named_cells_only(params):
    params["seeds"] = [0, 1, 2]
    params["extra_seeds"] = [{"domains": ["babies"], "methods": ["domainstudio", "ddpm-ft"], "seeds": [3, 4]},
                             {"domains": ["babies", "sketches"], "methods": ["domainstudio"], "seeds": [4, 5, 1]}]
    assert cell_seeds(params, "babies", "domainstudio") == [0, 1, 2, 3, 4, 5]
    assert cell_seeds(params, "babies", "ddpm-ft") == [0, 1, 2, 3, 4]
    assert cell_seeds(params, "sketches", "domainstudio") == [0, 1, 2, 4, 5]
    assert cell_seeds(params, "sketches", "ddpm-ft") == [0, 1, 2]


def test_extra_seeds_plan_runs_for_the_named_cells_only(tmp_path):
    """An extra_seeds overlay adds exactly its cells' runs to the tables' DAG."""
    import re

    project = copy_project(tmp_path / "p")
    (project / "more.yaml").write_text("extra_seeds: [{domains: [babies], methods: [domainstudio], seeds: [3, 4]}]\n")
    out = run(["snakemake", "-n", "results/table1.csv", "--configfile", "more.yaml"], cwd=project).stdout
    planned = set(re.findall(r"models/faces/(\w+)/10shot/([\w-]+)/seed(\d+)", out))
    extra = {run for run in planned if run[2] not in ("0",)}
    assert extra == {("babies", "domainstudio", "3"), ("babies", "domainstudio", "4")}
    assert ("sketches", "domainstudio", "0") in planned and ("babies", "ddpm-ft", "0") in planned


def test_paper_settings_row_trains_with_adapt_paper_and_the_tuned_row_with_adapt_weights(tmp_path):
    """domainstudio-paper's adapt job gets adapt.paper's weights and options; domainstudio keeps the tuned ones."""
    import json
    import re

    import yaml

    project = copy_project(tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    out = run(["snakemake", "-n", "-p", "models/faces/babies/10shot/domainstudio/seed0", "models/faces/babies/10shot/domainstudio-paper/seed0"],
              cwd=project).stdout
    configs = {m.group(1): json.loads(m.group(2).replace("'", "")) for m in
               re.finditer(r"--method (\S+) .*?--config-json '(\{.*?\})' ", out)}
    assert configs["domainstudio-paper"]["weights"] == params["adapt"]["paper"]["weights"]
    assert configs["domainstudio-paper"]["options"] == params["adapt"]["paper"]["options"]
    assert configs["domainstudio"]["weights"] == params["adapt"]["weights"]
    assert configs["domainstudio"]["options"] == params["adapt"]["options"]


def test_gan_adapt_job_gets_the_shared_settings_and_only_its_method_block(tmp_path):
    """adapt_gan's --config-json is gan.adapt with the run's seed plus this method's block of gan.methods: what
    domainstudio.params.arguments.gan_adapt_config builds (experiments/gan_steps.py builds its runs' settings with it)."""
    import json
    import re

    from domainstudio.params.arguments import EWC_FISHER, gan_adapt_config

    project = copy_project(tmp_path / "p")
    gan = yaml.safe_load((project / "params.yaml").read_text())["gan"]
    out = run(["snakemake", "-n", "-p", "models/faces/sketches/10shot/ewc/seed2", "--configfile", "config/baselines.yaml"], cwd=project).stdout
    config = json.loads(re.search(r"adapt-gan .*?--config-json '(\{.*?\})'", out).group(1))
    assert config == {"adapt": {**gan["adapt"], "seed": 2}, "methods": {"ewc": gan["methods"]["ewc"]}}
    assert config == gan_adapt_config(gan, "ewc", "2")
    assert f"--fisher {EWC_FISHER.format(world='faces', seed=2)} " in out  # the path experiments/gan_steps.py passes too


@pytest.mark.parametrize("overlay", [{}, {"evaluate": {"resize": 64, "lpips_samples": 500}}])
def test_experiments_score_extra_samples_with_the_evaluate_rules_command(tmp_path, monkeypatch, overlay):
    """experiments/main_job_scoring.evaluate runs `domainstudio evaluate` with the arguments rule evaluate gives the
    same run (both from domainstudio.params.arguments.evaluate_arguments), settings that only some runs use included."""
    import re
    import shlex
    import sys

    project = copy_project(tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    for block, values in overlay.items():
        params[block].update(values)
    (project / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    run_path = "faces/sketches/10shot/cdc/seed1"
    out = run(["snakemake", "-n", "-p", f"results/metrics/{run_path}/fid.json", "--configfile", "config/baselines.yaml", "overlay.yaml"], cwd=project).stdout
    rule_args = shlex.split(re.search(r"domainstudio evaluate (.*?) > logs/", out).group(1))

    sys.path.insert(0, str(ROOT / "experiments"))
    import main_job_scoring

    calls = []
    monkeypatch.setattr(main_job_scoring.subprocess, "run", lambda args, check: calls.append(args))
    main_job_scoring.evaluate(Path(f"samples/{run_path}"), Path(f"results/metrics/{run_path}"), run_path, "gan", params)
    assert calls[0][:2] == ["domainstudio", "evaluate"] and calls[0][2:] == rule_args
    assert ("--resize" in rule_args) == bool(overlay)
