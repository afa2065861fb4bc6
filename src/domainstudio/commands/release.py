"""The release verbs: release a trained source DDPM, source GAN or metric backbone with its manifest, and check a
release's files against its manifest."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from domainstudio.commands.stage_config import dataclass_from
from domainstudio.devices import set_threads

log = logging.getLogger("domainstudio")


def cmd_release_source(a):
    from domainstudio.models.source import SchedulerConfig
    from domainstudio.release.build import release_source
    from domainstudio.release.quality_curve import SourceQualityConfig

    cfg = dataclass_from(SourceQualityConfig, json.loads(a.quality_json), "source.quality")
    params = json.loads(a.params_json)
    scheduler_cfg = dataclass_from(SchedulerConfig, params.get("source", {}).get("scheduler"), "source.scheduler")
    set_threads(a.threads)
    snapshots = Path(a.snapshots) if a.snapshots else None
    manifest = release_source(Path(a.model), Path(a.out), Path(a.backbone), snapshots, a.world, a.resolution, a.data_seed,
                              cfg, scheduler_cfg, a.command, params)
    log.info("released %s: %d steps, FID %.3f (floor %.3f)", a.out, manifest["steps"], manifest["quality"]["fid"], manifest["quality"]["floor"])


def cmd_release_gan(a):
    from domainstudio.release.build import release_gan
    from domainstudio.release.quality_curve import SourceQualityConfig

    cfg = dataclass_from(SourceQualityConfig, json.loads(a.quality_json), "gan.quality")
    set_threads(a.threads)
    snapshots = Path(a.snapshots) if a.snapshots else None
    manifest = release_gan(Path(a.model), Path(a.out), Path(a.backbone), snapshots, a.world, a.resolution, a.data_seed,
                           cfg, a.command, json.loads(a.params_json))
    log.info("released %s: %d steps, FID %.3f (floor %.3f)", a.out, manifest["steps"], manifest["quality"]["fid"], manifest["quality"]["floor"])


def cmd_release_backbone(a):
    from domainstudio.release.build import release_backbone

    release_backbone(Path(a.backbone), Path(a.out), a.command, json.loads(a.params_json))


def cmd_verify_release(a):
    from domainstudio.manifest import ReleaseError, verify_release

    for folder in a.folders:
        try:
            manifest = verify_release(folder)
        except ReleaseError as err:
            raise SystemExit(f"error: {err}") from None
        print(f"{folder}: {len(manifest['files'])} files match {folder}/manifest.json")


def add_verbs(verb) -> None:
    for name, func, what, block in (("release-source", cmd_release_source, "a trained source DDPM: diffusers folder", "source"),
                                    ("release-gan", cmd_release_gan, "the source GAN of the baselines: gan.pt", "gan")):
        s = verb(name, func, f"Release {what}, quality curve, grid, manifest")
        s.add_argument("--model", required=True); s.add_argument("--out", required=True); s.add_argument("--backbone", required=True)
        s.add_argument("--snapshots", help="the trainer's snapshot folder (step<N>/), for the quality curve")
        s.add_argument("--world", default="faces"); s.add_argument("--resolution", type=int, required=True); s.add_argument("--data-seed", type=int, default=0)
        s.add_argument("--quality-json", default="{}", help=f"{block}.quality as JSON"); s.add_argument("--params-json", required=True,
                       help="the parameters that regenerate the release (recorded in the manifest)")
        s.add_argument("--command", required=True, help="the command that regenerates the release (recorded in the manifest)")
        s.add_argument("--threads", type=int)

    s = verb("release-backbone", cmd_release_backbone, "Release the embedded metric backbone with its sanity numbers and a manifest")
    s.add_argument("--backbone", required=True); s.add_argument("--out", required=True)
    s.add_argument("--params-json", required=True); s.add_argument("--command", required=True)

    s = verb("verify-release", cmd_verify_release, "Check a release folder's files against its manifest (sha256)")
    s.add_argument("folders", nargs="+")
