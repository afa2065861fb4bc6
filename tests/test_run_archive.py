"""experiments/run_archive.py, which keeps a multi-workspace study's finished runs: what it copies, what it refuses,
and what it says is left to run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from domainstudio.report.tables import run_records
from tests.conftest import ROOT, copy_project, run

sys.path.insert(0, str(ROOT / "experiments"))
import run_archive  # noqa: E402

RUN = "faces/babies/10shot/domainstudio/seed3"


def _git_workspace(ws, files):
    """A git checkout at ``ws`` whose one commit holds ``files`` (name -> text)."""
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    for name, text in files.items():
        (ws / name).write_text(text)
    subprocess.run(["git", "-C", str(ws), "add", "."], check=True)
    subprocess.run(["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "w"], check=True)
    return ws


def _write_run(ws, run, records=True):
    """A finished run's four metric files and, with ``records``, its adaptation.json and sampling.json."""
    m = ws / "results" / "metrics" / run
    m.mkdir(parents=True)
    (m / "intra_lpips.json").write_text(json.dumps({"family": "ddpm", "intra_lpips": 0.5, "near_copy_fraction": 0.1}))
    (m / "fid.json").write_text(json.dumps({"fid": 20.0, "kid": 0.01}))
    (m / "fidelity.json").write_text(json.dumps({"c2st_accuracy": 0.9, "precision": 0.5}))
    (m / "diversity.json").write_text(json.dumps({"in_domain": 0.8, "factor_diversity": 0.7}))
    for root, name in run_archive.RECORDS.items() if records else ():
        (ws / root / run).mkdir(parents=True)
        (ws / root / run / name).write_text(json.dumps({"run": run}))


def _workspace(tmp_path, runs=(RUN,)):
    """A git workspace with finished runs."""
    ws = _git_workspace(tmp_path / "ws", {"params.yaml": "world: faces\n"})
    for run in runs:
        _write_run(ws, run)
    return ws


def test_add_copies_the_records_with_the_commit_and_the_tables_read_them(tmp_path):
    ws = _workspace(tmp_path)
    archive = tmp_path / "archive"
    run_archive.add(archive, [ws / "results" / "metrics" / RUN], ws)
    dest = archive / "runs" / RUN
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["intra_lpips.json", "fid.json", "fidelity.json", "diversity.json", "adaptation.json", "sampling.json", "provenance.json"])
    head = subprocess.run(["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    prov = json.loads((dest / "provenance.json").read_text())
    assert prov["commit"] == head and prov["cpu"] and prov["torch"]
    row = run_records([dest]).iloc[0]
    assert (row["domain"], row["method"], row["seed"], row["fid"], row["in_domain"]) == ("babies", "domainstudio", 3, 20.0, 0.8)


def test_an_unfinished_run_is_skipped_and_an_archived_one_not_overwritten(tmp_path, capsys):
    ws = _workspace(tmp_path, runs=(RUN, "faces/babies/10shot/ddpm-ft/seed3"))
    (ws / "samples" / "faces/babies/10shot/ddpm-ft/seed3" / "sampling.json").unlink()
    archive = tmp_path / "archive"
    run_archive.add(archive, [ws / "results" / "metrics" / r for r in (RUN, "faces/babies/10shot/ddpm-ft/seed3")], ws)
    assert not (archive / "runs" / "faces/babies/10shot/ddpm-ft/seed3").exists()
    assert "skipped faces/babies/10shot/ddpm-ft/seed3: not finished" in capsys.readouterr().err
    (ws / "results" / "metrics" / RUN / "fid.json").write_text(json.dumps({"fid": 99.0}))
    run_archive.add(archive, [ws / "results" / "metrics" / RUN], ws)
    assert "fid differ here; kept the archived run" in capsys.readouterr().err
    assert json.loads((archive / "runs" / RUN / "fid.json").read_text())["fid"] == 20.0


def test_a_workspace_whose_tracked_files_changed_is_refused(tmp_path):
    ws = _workspace(tmp_path)
    (ws / "params.yaml").write_text("world: churches\n")
    with pytest.raises(SystemExit, match="tracked files differ"):
        run_archive.add(tmp_path / "archive", [ws / "results" / "metrics" / RUN], ws)
    assert not (tmp_path / "archive").exists()


def test_status_lists_the_planned_runs_the_archive_lacks(tmp_path, capsys):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("methods: [ddpm-ft, domainstudio]\ndomains: [babies]\nseeds: [0]\n"
                       "extra_seeds: [{domains: [babies], methods: [domainstudio], seeds: [3]}]\n")
    ws = _workspace(tmp_path)
    run_archive.add(tmp_path / "archive", [ws / "results" / "metrics" / RUN], ws)
    capsys.readouterr()
    run_archive.status(tmp_path / "archive", [overlay], ROOT)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# 1 of 3 planned runs archived; 2 to run"
    assert out[1:] == ["results/metrics/faces/babies/10shot/ddpm-ft/seed0/intra_lpips.json",
                       "results/metrics/faces/babies/10shot/domainstudio/seed0/intra_lpips.json"]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not a run folder"):
        run_archive.run_key(tmp_path / "results" / "metrics")


def test_the_plan_is_the_workflows_claims_runs(tmp_path):
    """status's plan for the study's overlays is exactly the run folders the workflow's claims rule reads."""
    overlays = ["config/seeds3.yaml", "config/seeds_decide.yaml"]
    project = copy_project(tmp_path / "p")
    dry = run(["snakemake", "-n", "-p", "results/claims.csv", "--configfile", *overlays], cwd=project).stdout
    shell = next(line for line in dry.splitlines() if "domainstudio claims --out" in line)
    workflow_runs = [w.removeprefix("results/metrics/") for w in shell.split() if w.startswith("results/metrics/")]
    planned = [k.as_posix() for k in run_archive.planned_runs([ROOT / o for o in overlays], ROOT)]
    assert sorted(planned) == sorted(workflow_runs) and len(planned) == 285


def _study_workspace(tmp_path):
    """A git workspace holding the real params.yaml and a three-run overlay, no runs yet."""
    return _git_workspace(tmp_path / "study", {
        "params.yaml": (ROOT / "params.yaml").read_text(),
        "small.yaml": "methods: [ddpm-ft, domainstudio]\ndomains: [babies]\nseeds: [0]\n"
                      "extra_seeds: [{domains: [babies], methods: [domainstudio], seeds: [3]}]\n"})


def _fake_snakemake(monkeypatch, ws, commands=None, returncode=0, records=True):
    """subprocess.run with Snakemake replaced: it "makes" each target run's files (without adaptation.json and
    sampling.json unless ``records``) and exits with ``returncode``; git runs for real."""
    real_run = subprocess.run

    def fake_run(cmd, **kw):
        if cmd[0] != "snakemake":
            return real_run(cmd, **kw)
        if commands is not None:
            commands.append((cmd, kw["cwd"], kw["env"]["PYTHONPATH"]))
        for target in (c for c in cmd if c.startswith("results/metrics/")) if returncode == 0 else ():
            _write_run(ws, target.removeprefix("results/metrics/").removesuffix("/intra_lpips.json"), records=records)
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setattr(run_archive.subprocess, "run", fake_run)


def test_run_makes_the_missing_runs_in_batches_and_archives_each(tmp_path, monkeypatch):
    ws = _study_workspace(tmp_path)
    commands = []
    _fake_snakemake(monkeypatch, ws, commands)
    archive = tmp_path / "archive"
    run_archive.run_batches(archive, [Path("small.yaml")], ws, batch=2, cores=2)
    assert [sum(c.startswith("results/metrics/") for c in cmd) for cmd, _, _ in commands] == [2, 1]
    first, cwd, pythonpath = commands[0]
    assert first[:4] == ["snakemake", "--cores", "2", "--rerun-incomplete"] and first[-2:] == ["--configfile", "small.yaml"]
    assert cwd == ws and pythonpath == str(ws / "src")
    archived = sorted(p.parent.relative_to(archive / "runs").as_posix() for p in (archive / "runs").rglob("provenance.json"))
    assert archived == ["faces/babies/10shot/ddpm-ft/seed0", "faces/babies/10shot/domainstudio/seed0",
                        "faces/babies/10shot/domainstudio/seed3"]


def test_run_stops_at_a_failed_command_and_archives_nothing_of_it(tmp_path, monkeypatch):
    ws = _study_workspace(tmp_path)
    _fake_snakemake(monkeypatch, ws, returncode=1)
    with pytest.raises(SystemExit, match="snakemake failed"):
        run_archive.run_batches(tmp_path / "archive", [Path("small.yaml")], ws, batch=2, cores=2)
    assert not (tmp_path / "archive").exists()


def test_run_stops_when_a_made_run_cannot_be_archived(tmp_path, monkeypatch):
    """A run Snakemake reports made but whose records are incomplete stops the loop instead of being retried forever."""
    ws = _study_workspace(tmp_path)
    _fake_snakemake(monkeypatch, ws, records=False)
    with pytest.raises(SystemExit, match=r"without these runs' records \(see above\): faces/babies/10shot/ddpm-ft/seed0$"):
        run_archive.run_batches(tmp_path / "archive", [Path("small.yaml")], ws, batch=1, cores=2)
