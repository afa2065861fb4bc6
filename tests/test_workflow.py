"""End to end, as a user of a fresh clone types it: the smoke overlay named in params.yaml, the main job's target
and its HTML report through Snakemake, the rest through `dvc repro` (which runs Snakemake) on the DVC project as
committed, then a DVC round trip: push to a local remote, clone afresh, pull, and Snakemake has nothing left to run."""
import csv
import os

import pytest
import yaml

from domainstudio.report.claims import COLUMNS as CLAIM_COLUMNS
from tests.conftest import ROOT, copy_project, run

GIT_ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@localhost", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@localhost", "DVC_NO_ANALYTICS": "1"}


def smoke_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text()).items():
        params[key] = {**params[key], **value} if isinstance(value, dict) else value
    return params


def with_overlay(params_text: str, overlay: str) -> str:
    """params.yaml as a user edits it to run an overlay through DVC: ``overlays: [<overlay>]``."""
    assert "\noverlays: []" in params_text
    return params_text.replace("\noverlays: []", f"\noverlays: [{overlay}]", 1)


@pytest.mark.slow
def test_smoke_workflow_dvc_round_trip(tmp_path):
    project = copy_project(tmp_path / "project")
    assert (project / ".dvc" / "config").is_file(), "the repository must be a DVC project as cloned (.dvc/config)"
    params = smoke_params()
    (project / "params.yaml").write_text(with_overlay((ROOT / "params.yaml").read_text(), "config/smoke.yaml"))
    git = lambda *args, cwd=project: run(["git", *args], cwd=cwd, env=GIT_ENV)  # noqa: E731
    git("init", "-q", "-b", "main")
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=project, env=GIT_ENV)
    git("add", "-A")
    git("commit", "-q", "-m", "smoke project")

    # The main job's command and the HTML report of what it ran (docs/workflow.md), before anything else exists.
    run(["snakemake", "--cores", "2", "results/table1.csv"], cwd=project)
    run(["snakemake", "--report", "results/report.html", "results/table1.csv"], cwd=project)
    html = (project / "results" / "report.html").read_text()
    for marker in ("Tables", "Samples", "table1.csv", "grid.png"):
        assert marker in html, marker

    run(["dvc", "repro"], cwd=project, env=GIT_ENV)  # the rest of `all`, through the committed dvc.yaml

    all_rows = list(csv.DictReader(open(project / "results" / "table1.csv")))
    rows = [r for r in all_rows if r["source"] == "measured"]
    expected = {(d, str(k), m) for d in params["domains"] for k in params["shots"] for m in params["methods"]}
    assert {(r["domain"], r["shots"], r["method"]) for r in rows} == expected
    for r in rows:
        assert 0 < float(r["intra_lpips"]) < 4 and r["backbone"] == params["evaluate"]["backbone"]
        assert int(r["n_samples"]) == params["sample"]["n_samples"] and r["status"] == "measured"
        assert 0 <= float(r["near_copy_fraction"]) <= 1
    assert {r["source"] for r in all_rows} == {"measured", "reported"}
    fid_rows = [r for r in csv.DictReader(open(project / "results" / "table2.csv")) if r["source"] == "measured"]
    assert len(fid_rows) == len(rows) and all(float(r["fid"]) > 0 and 0 <= float(r["in_domain"]) <= 1 for r in fid_rows)
    for r in fid_rows:  # the fidelity measures beside FID (docs/metrics.md)
        assert all(0 <= float(r[m]) <= 1 for m in ("c2st_accuracy", "precision", "recall", "coverage")) and float(r["density"]) >= 0
        assert float(r["swd"]) > 0  # the pyramid patches of samples never match the reference exactly
    claims = list(csv.DictReader(open(project / "results" / "claims.csv")))  # the paper's claims, decided over seeds
    assert claims and list(claims[0]) == CLAIM_COLUMNS
    assert {r["domain"] for r in claims} == set(params["domains"]) and {r["variant"] for r in claims} == {"domainstudio"}
    assert {r["baseline"] for r in claims} == set(params["methods"]) - {"domainstudio"}
    assert params["seeds"] == [0] and {r["verdict"] for r in claims} == {"undecided (1 seed)"}  # one seed: no interval
    assert "## Claims of the paper" in (project / "results" / "report.md").read_text()
    calibration = (project / "results" / "calibration" / "faces.md").read_text()
    assert all(f"### {d}" in calibration for d in params["domains"]) and "methods in table 2" in calibration
    shots_rows = [r for r in csv.DictReader(open(project / "results" / "table4_shots.csv"))]
    assert sorted(r["shots"] for r in shots_rows) == [str(k) for k in sorted(params["report"]["shots"]["shots"])]
    for name in ("table3_ablation.csv", "table1.md", "report.md", "metrics.json", "figures/faces_samples.png", "figures/faces_fid.png",
                 "figures/faces_degradations.png", *[f"figures/faces_calibration_{d}.png" for d in params["domains"]],
                 *[f"figures/faces_{d}_nearest.png" for d in params["domains"]]):
        assert (project / "results" / name).exists(), name
    assert "Time per stage" in (project / "results" / "report.md").read_text()
    assert "intra_lpips" in run(["dvc", "metrics", "show"], cwd=project, env=GIT_ENV).stdout
    assert (project / "samples" / "faces" / "source" / "seed0" / "grid.png").exists()
    assert (project / "results" / "figures" / "faces_domains.png").exists()
    # Adaptations remove their checkpoints once written; the two pre-trainings keep their final state (to continue).
    kept = sorted(p.relative_to(project / "checkpoints").as_posix() for p in (project / "checkpoints").rglob("*.pt")
                  if "_snapshots/" not in p.as_posix())  # the snapshots behind the quality curves are models, not states
    assert kept == ["faces/source.pt", "faces/source_gan.pt"], kept
    # The text-to-image branch on the offline tiny pipeline, enabled by the smoke overlay.
    t2i = params["t2i"]
    assert t2i["enabled"] and t2i["pipeline"] == "tiny"
    t2i_rows = list(csv.DictReader(open(project / "results" / "t2i_table.csv")))
    assert {(r["domain"], r["shots"], r["method"]) for r in t2i_rows} == {
        (d, str(k), m) for d in t2i["domains"] for k in t2i["shots"] for m in t2i["methods"]}
    for r in t2i_rows:
        assert r["family"] == "t2i" and 0 < float(r["intra_lpips"]) < 4
        assert int(r["n_samples"]) == len(t2i["sample"]["prompts"]) * t2i["sample"]["n_per_prompt"]
        run_dir = f"{r['domain']}/{r['shots']}shot/{r['method']}/seed{r['seeds']}"
        assert (project / "models" / "faces" / "t2i" / run_dir / "unet" / "config.json").exists()
        assert (project / "samples" / "faces" / "t2i" / run_dir / "grid.png").exists()

    # Snakemake and DVC agree that everything is up to date.
    assert "Nothing to be done" in run(["snakemake", "--cores", "1", "-n", "all"], cwd=project).stdout
    assert "up to date" in run(["dvc", "status"], cwd=project, env=GIT_ENV).stdout

    # Snakemake's own HTML report of `all`: one self-contained page with the tables, figures and grids marked report().
    page = project / "results" / "report.html"
    run(["snakemake", "--report", "results/report.html"], cwd=project)
    html = page.read_text()
    for marker in ("Tables", "Claims", "Figures", "Samples", "Source models", "Calibration", "table1.csv", "claims.csv",
                   "faces_samples.png", "grid.png"):
        assert marker in html, marker
    assert "up to date" in run(["dvc", "status"], cwd=project, env=GIT_ENV).stdout  # DVC ignores the page (.dvcignore)

    run(["dvc", "push", "-q"], cwd=project, env=GIT_ENV)
    git("add", "dvc.lock")
    git("commit", "-q", "-m", "results")

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], cwd=tmp_path, env=GIT_ENV)
    run(["dvc", "pull", "-q"], cwd=clone, env=GIT_ENV)
    assert (clone / "results" / "table1.csv").read_bytes() == (project / "results" / "table1.csv").read_bytes()
    # Checkout does not keep modification times: the documented step after a pull tells Snakemake so.
    run(["snakemake", "--cores", "1", "--touch", "all"], cwd=clone)
    assert "Nothing to be done" in run(["snakemake", "--cores", "1", "-n", "all"], cwd=clone).stdout
    assert "up to date" in run(["dvc", "status"], cwd=clone, env=GIT_ENV).stdout

    # A parameter sweep through DVC experiments: only the metric jobs that read the parameter rerun.
    run(["dvc", "exp", "run", "-q", "-S", "evaluate.cluster_cap=3"], cwd=clone, env=GIT_ENV)
    shown = run(["dvc", "exp", "show", "--no-pager", "--csv"], cwd=clone, env=GIT_ENV).stdout
    assert "evaluate.cluster_cap" in shown and ",3," in shown
