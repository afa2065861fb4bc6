"""The workflow through a real single-node SLURM cluster (tests/slurm_cluster.py) with the project's `slurm`
profile plus the test cluster's overlay (`slurm-test`: squeue instead of sacct, threads for 2 CPUs).

The smoke configuration, reduced to one domain and one method (CI_OVERLAY), runs once locally and once through
SLURM; on CPU the computation is seeded and deterministic, so weights, sample PNGs and metrics must be identical.
A job that fails must fail the run, with its log named. Skipped, with the reason, where no cluster can be started
(not root, no apt-get, packages not installable, a real cluster's /etc/slurm/slurm.conf present).
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import copy_project
from tests.slurm_cluster import ClusterUnavailable, start, stop

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# The smoke run (config/smoke.yaml) cut to the fewest jobs that still pass every stage: 7 jobs, 6 through SLURM.
CI_OVERLAY = {
    "domains": ["babies"],
    "methods": ["domainstudio"],
    "data": {"source_images": 64, "reference_images": 8, "shot_sets": [5]},
    "source": {"train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "warmup_steps": 2}},
    "adapt": {"train": {"steps": 4, "batch_size": 5, "checkpoint_every": 2}},
    "sample": {"n_samples": 12, "ddim_steps": 3, "batch_size": 12},
    "report": {"shots": {"shots": [5]}},
}
SLURM_PROFILES = ["--profile", "workflow/profiles/slurm", "--profile", "workflow/profiles/slurm-test"]
LIMIT_S = 600  # Snakemake waits for running jobs on SIGTERM: every run is bounded and then SIGKILLed


class Bounded:
    """A command in its own process group, SIGKILLed (the whole group) when it runs past ``limit`` seconds."""

    def __init__(self, cmd, cwd, env=None, limit=LIMIT_S):
        self.cmd, self.limit = cmd, limit
        self.proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def wait(self) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=self.limit)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
            raise AssertionError(f"{' '.join(self.cmd)} ran past {self.limit} s and was killed:\n{out[-4000:]}")
        return self.proc.returncode, out


def ok(bounded: Bounded) -> str:
    rc, out = bounded.wait()
    assert rc == 0, f"{' '.join(bounded.cmd)} failed ({rc}):\n{out[-6000:]}"
    return out


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="domainstudio-slurm-"))
    root.chmod(0o755)  # munged runs as the munge user and must reach its socket folder
    try:
        start(root)
    except ClusterUnavailable as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"no SLURM test cluster on this machine: {err}")
    yield root
    stop(root)
    shutil.rmtree(root, ignore_errors=True)


def _digests(folder: Path) -> dict[str, str]:
    return {f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _slurm_job_ids(output: str) -> dict[str, str]:
    """rule -> SLURM job id, from the plugin's 'Job N has been submitted with SLURM jobid M (log: .../rule_<rule>/...)'."""
    return {m.group(2): m.group(1) for m in re.finditer(r"SLURM jobid (\d+) \(log: \S*/rule_(\w+)/", output)}


def test_smoke_workflow_through_slurm_equals_local_run(cluster, tmp_path):
    overlay = tmp_path / "ci.yaml"
    overlay.write_text(yaml.safe_dump(CI_OVERLAY))
    config = ["--configfile", "config/smoke.yaml", str(overlay)]
    local, remote = copy_project(tmp_path / "local"), copy_project(tmp_path / "slurm")

    # The SLURM run spends most of its time waiting between status checks: run the local reference meanwhile.
    # SBATCH_PARTITION is read by the profile (the user's own setting) and becomes `sbatch -p debug`.
    through_slurm = Bounded(["snakemake", "results/table1.csv", *SLURM_PROFILES, *config], remote, env={"SBATCH_PARTITION": "debug"})
    ok(Bounded(["snakemake", "results/table1.csv", "--cores", "2", *config], local))
    out = ok(through_slurm)

    jobs = _slurm_job_ids(out)
    assert set(jobs) == {"render_source", "render_target", "pretrain_source", "adapt", "sample", "train_backbone",
                         "reference_stats", "evaluate"}, out[-3000:]
    for rule, job in jobs.items():  # finished jobs stay known to slurmctld for MinJobAge (300 s)
        info = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, check=True).stdout
        assert "JobState=COMPLETED" in info and "Partition=debug" in info, info
        assert ("gres:gpu:1" in info) == (rule in ("pretrain_source", "adapt", "sample")), f"{rule}: {info}"

    run = "faces/babies/5shot/domainstudio/seed0"
    assert (remote / "results/table1.csv").read_text() == (local / "results/table1.csv").read_text()
    assert (remote / f"results/metrics/{run}/intra_lpips.json").read_text() == (local / f"results/metrics/{run}/intra_lpips.json").read_text()
    for folder in (f"models/{run}/unet", "models/faces/source/unet", f"samples/{run}/images"):
        assert _digests(remote / folder) == _digests(local / folder) != {}, folder


def _png(path: Path, seed: int, size: int = 32) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_failing_job_fails_the_run_and_names_its_log(cluster, tmp_path):
    """A corrupt source image (found only when the job reads it) makes the first SLURM job fail."""
    project = copy_project(tmp_path / "project")
    for folder, n in (("data/mine/source", 4), ("data/mine/cats/1shot", 1)):
        (project / folder).mkdir(parents=True)
        for i in range(n):
            _png(project / folder / f"{i:03d}.png", i)
    (project / "data/mine/source/002.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    overlay = tmp_path / "broken.yaml"
    overlay.write_text(yaml.safe_dump({"world": "mine", "domains": ["cats"], "shots": [1], "methods": ["ddpm-ft"],
                                       "data": {"kind": "folders"}, "t2i": {"enabled": False},
                                       "evaluate": {"backbone": "alex-random", "fid_backbone": "inception"},
                                       "report": {"ablation": {"domains": ["cats"]}, "shots": {"domains": ["cats"], "shots": [1]}}}))

    rc, out = Bounded(["snakemake", "models/mine/source", *SLURM_PROFILES, "--configfile", "config/smoke.yaml", str(overlay)],
                      project).wait()
    assert rc != 0, out[-3000:]
    assert "SLURM-job" in out and "FAILED" in out, out[-3000:]
    assert "logs/pretrain_source/mine.log" in out, out[-3000:]  # the job's own log is named ...
    assert "002.png" in out, out[-3000:]  # ... and shown (show-failed-logs), with the file that broke it
    assert not (project / "models/mine/source").exists()
