"""Release manifests. A release is a folder shipped in the repository (a diffusers DDPMPipeline, the source GAN, the
metric backbone) plus ``manifest.json``: what it is, the command and parameters that regenerate it, the commit and
machine that trained it, its quality figures, and the sha256 and size of every other file. :func:`verify_release`
checks a folder against its manifest before anything loads it, so a replaced or truncated weight file stops the run
instead of silently changing every number downstream. Building a release: :mod:`domainstudio.release`."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"
NOT_RELEASED = {MANIFEST, ".snakemake_timestamp"}  # Snakemake's marker in every directory output changes with each run


class ReleaseError(ValueError):
    """A release folder whose files do not match its manifest; the message names the files."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_records(folder: str | Path) -> dict[str, dict]:
    """``{relative path: {"sha256", "bytes"}}`` of every file in ``folder`` but the manifest (and Snakemake's marker)."""
    folder = Path(folder)
    return {f.relative_to(folder).as_posix(): {"sha256": sha256_of(f), "bytes": f.stat().st_size}
            for f in sorted(folder.rglob("*")) if f.is_file() and f.name not in NOT_RELEASED}


def write_manifest(folder: str | Path, record: dict) -> dict:
    """Write ``record`` plus the checksums of the folder's files as ``folder/manifest.json``; return it."""
    manifest = {**record, "files": file_records(folder)}
    manifest["total_bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify_release(folder: str | Path) -> dict:
    """The manifest of ``folder`` after checking every file against it; ReleaseError names what differs."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise ReleaseError(f"{path} not found: {folder} is not a release folder")
    manifest = json.loads(path.read_text())
    expected, actual = manifest.get("files", {}), file_records(folder)
    problems = [f"{folder / name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"{folder / name}: not in the manifest" for name in sorted(set(actual) - set(expected))]
    problems += [f"{folder / name}: sha256 {actual[name]['sha256'][:12]}... differs from the manifest's {expected[name]['sha256'][:12]}..."
                 for name in sorted(set(expected) & set(actual)) if actual[name]["sha256"] != expected[name]["sha256"]]
    if problems:
        raise ReleaseError(f"release {folder} does not match {path}:\n  " + "\n  ".join(problems)
                           + f"\nRestore the files (git checkout -- {folder}) or regenerate the release with: "
                           + manifest.get("command", "the command in the manifest"))
    return manifest


def is_release(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).exists()
