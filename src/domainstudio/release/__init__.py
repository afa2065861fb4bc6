"""Released artifacts: a model folder shipped in the repository with a manifest, the embedded world's hub checkpoint.

A release is a folder (a diffusers DDPMPipeline, the metric backbone, ...) plus ``manifest.json``: what it is, the
command and parameters that regenerate it, the commit and machine that trained it, its training steps and time, its
quality figures, and the sha256 and size of every other file in the folder. :func:`verify_release` checks the files
against the manifest before a workflow uses a release, so a replaced or truncated weight file stops the run instead
of silently changing every number downstream.
"""
from domainstudio.release.manifest import MANIFEST, ReleaseError, file_records, is_release, sha256_of, verify_release, write_manifest  # noqa: F401
