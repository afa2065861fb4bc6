"""The ``domainstudio`` command: one verb per workflow step. Snakemake rules and tests call these verbs.

Each stage's verbs are registered by its module in :mod:`domainstudio.commands` (``commands/<stage>.py: add_verbs``).
Stage settings arrive as ``--config-json`` (a block of params.yaml, already validated by the workflow's schema);
unknown keys are an error here too (:mod:`domainstudio.commands.stage_config`), so a verb can be run by hand without
Snakemake.
"""
from __future__ import annotations

import argparse
import logging
import sys

from domainstudio.commands import adapt, data, gan, metrics, release, report, sample, source, t2i

# In workflow order: data, source model, releases, adaptation, sampling, metrics, report, GAN baselines, t2i.
STAGES = (data, source, release, adapt, sample, metrics, report, gan, t2i)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="domainstudio", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name, func, help):
        s = sub.add_parser(name, help=help, description=help)
        s.set_defaults(func=func)
        return s

    for stage in STAGES:
        stage.add_verbs(verb)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from domainstudio.data.images import ImageDataError
    from domainstudio.devices import DeviceError
    from domainstudio.metrics.backbones import BackboneError
    from domainstudio.metrics.fid import InceptionWeightsMissing
    from domainstudio.metrics.lpips_embedding import LpipsWeightsMissing
    from domainstudio.models import SourceModelError

    try:
        args.func(args)
    except (ImageDataError, SourceModelError, BackboneError, LpipsWeightsMissing, InceptionWeightsMissing, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
