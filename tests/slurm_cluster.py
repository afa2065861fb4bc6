"""A real single-node SLURM cluster for tests and for trying the `slurm` profile on one machine.

    python -m tests.slurm_cluster start DIR   # install (apt) if needed, start munged, slurmctld, slurmd
    python -m tests.slurm_cluster stop DIR     # stop the three daemons by their pid files, remove the config

State, spool, logs, pid files and the munge socket live under DIR; the two SLURM ports are picked free at start.
The configuration goes where every SLURM client looks for it, /etc/slurm/slurm.conf (+ gres.conf), because
snakemake-executor-plugin-slurm's job step drops SLURM_CONF before its nested `srun`; so one test cluster runs at
a time, and an /etc/slurm/slurm.conf this module did not write (a real cluster's) is never touched.
The one node is this machine (``hostname -s``) with all its CPUs (at least 2), its memory minus 1 GiB but at least
``memory_mib`` (on paper: memory is not enforced here, so the project profile's requests fit) and ``gpus`` GPU
generic resources backed by empty stand-in files (slurmd drops a GPU without a device file), so jobs that ask for
GPUs are scheduled as on a GPU cluster; whatever runs in them still sees no GPU. No accounting: ``sacct`` does not
work here, so the Snakemake plugin must query ``squeue`` (see ``workflow/profiles/slurm-test``).
Needs root (slurmd and munged's user switch) and Debian's slurmctld, slurmd, slurm-client and munge packages.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "munged", "munge", "unmunge")
DAEMONS = ("slurmd", "slurmctld", "munged")  # stop order
ETC = Path("/etc/slurm")
MARK = "# Written by tests/slurm_cluster.py for the test cluster under "


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster; the message says why (tests skip with it)."""


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def ensure_installed() -> None:
    """Install the Debian packages when a binary is missing (apt-get; `apt-get update` only if the first try fails)."""
    if all(shutil.which(b) for b in BINARIES):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurm/munge are not installed and installing them needs root")
    if not shutil.which("apt-get"):
        raise ClusterUnavailable(f"slurm/munge are not installed and there is no apt-get to install {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    proc = _run(install, env=env, timeout=600)
    if proc.returncode != 0:
        _run(["apt-get", "update", "-q"], env=env, timeout=600)
        proc = _run(install, env=env, timeout=600)
    missing = [b for b in BINARIES if not shutil.which(b)]
    if proc.returncode != 0 or missing:
        raise ClusterUnavailable(f"`{' '.join(install)}` failed (missing: {missing}): {proc.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("cannot read MemTotal from /proc/meminfo")


def slurm_conf(root: Path, node: str, cpus: int, memory_mib: int, gpus: int, ctld_port: int, slurmd_port: int) -> str:
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    return f"""{MARK}{root}
ClusterName=domainstudio-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
ReturnToService=2
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mib}{gres} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _owner_of_etc_conf() -> Path | None:
    """The DIR of the test cluster whose config is in /etc/slurm; raises if a config we did not write is there."""
    conf = ETC / "slurm.conf"
    if not conf.exists():
        return None
    first = conf.read_text().splitlines()[:1]
    if not first or not first[0].startswith(MARK):
        raise ClusterUnavailable(f"{conf} exists and was not written by tests/slurm_cluster.py (a real cluster?): not touching it")
    return Path(first[0][len(MARK):])


def start(root: str | Path, gpus: int = 2, memory_mib: int = 65536, timeout: float = 60) -> None:
    """Start the cluster under ``root``; clients (sbatch, squeue, sinfo) find it through /etc/slurm/slurm.conf."""
    if os.geteuid() != 0:
        raise ClusterUnavailable("starting slurmd and munged needs root")
    ensure_installed()
    root = Path(root).resolve()
    other = _owner_of_etc_conf()
    if other is not None and other != root and _alive(_pid(other / "slurmctld.pid") or -1):
        raise ClusterUnavailable(f"another test cluster is running (under {other}); stop it first")
    for sub in ("state", "spool", "log", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "munge", user="munge", group="munge")
    os.chmod(root / "munge", 0o755)  # munged: clients need execute permission on the socket folder
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        raise ClusterUnavailable(f"{key} is missing (the munge package creates it)")
    node = socket.gethostname().split(".")[0]
    ETC.mkdir(parents=True, exist_ok=True)
    (ETC / "slurm.conf").write_text(slurm_conf(root, node, max(os.cpu_count() or 1, 2), max(_memory_mib() - 1024, memory_mib),
                                               gpus, _free_port(), _free_port()))
    (root / "dev").mkdir(exist_ok=True)
    for i in range(gpus):
        (root / "dev" / f"gpu{i}").touch()
    gres = f"NodeName={node} Name=gpu File={root}/dev/gpu[0-{gpus - 1}]\n" if gpus else ""
    (ETC / "gres.conf").write_text(f"{MARK}{root}\n{gres}")

    munge = root / "munge"
    proc = _run(["runuser", "-u", "munge", "--", "munged", f"--socket={munge}/munge.socket", f"--pid-file={munge}/munged.pid",
                 f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"])
    if proc.returncode != 0:
        stop(root)
        raise ClusterUnavailable(f"munged did not start: {proc.stderr.strip()}")
    check = subprocess.run(f"munge -S {munge}/munge.socket -n | unmunge -S {munge}/munge.socket", shell=True, capture_output=True, text=True)
    if check.returncode != 0:
        stop(root)
        raise ClusterUnavailable(f"munge does not work: {check.stderr.strip()}")
    for cmd in (["slurmctld", "-c", "-i"], ["slurmd"]):
        proc = _run(cmd)
        if proc.returncode != 0:
            stop(root)
            raise ClusterUnavailable(f"{cmd[0]} did not start: {proc.stderr.strip()} (log: {root / 'log'})")
    started, state = time.monotonic(), ""
    while time.monotonic() < started + timeout:
        state = _run(["sinfo", "-h", "-N", "-o", "%t"]).stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return
        if state.startswith(("inval", "drain", "down")) and time.monotonic() > started + 5:
            break
        time.sleep(0.5)
    logs = "\n".join((root / "log" / f).read_text()[-1000:] for f in ("slurmctld.log", "slurmd.log") if (root / "log" / f).exists())
    stop(root)
    raise ClusterUnavailable(f"the node did not become idle within {timeout:.0f} s (state {state!r}); logs:\n{logs}")


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Running and not a zombie (a container's init may never reap the daemons)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop(root: str | Path, timeout: float = 15) -> None:
    """Stop slurmd, slurmctld and munged of the cluster under ``root`` by their pid files (never by name)."""
    root = Path(root).resolve()
    pid_files = {"slurmd": root / "slurmd.pid", "slurmctld": root / "slurmctld.pid", "munged": root / "munge" / "munged.pid"}
    for daemon in DAEMONS:
        pid = _pid(pid_files[daemon])
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if not _alive(pid):
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        ours = _owner_of_etc_conf() == root
    except ClusterUnavailable:
        ours = False
    if ours:
        for name in ("slurm.conf", "gres.conf"):
            (ETC / name).unlink(missing_ok=True)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("start", "stop"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if args[0] == "stop":
        stop(args[1])
        return 0
    try:
        start(args[1])
    except ClusterUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"started; sinfo, sbatch and squeue use {ETC / 'slurm.conf'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
