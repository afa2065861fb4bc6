"""The ``domainstudio`` command: one verb per workflow step. Snakemake rules and tests call these verbs.

Each stage's package registers its own verbs (``<stage>/commands.py: add_verbs``). Stage settings arrive as
``--config-json`` (a block of params.yaml, already validated by the workflow's schema); unknown keys are an error
here too (:mod:`domainstudio.stage_config`), so a verb can be run by hand without Snakemake.
"""
from __future__ import annotations

import argparse
import logging
import sys

from domainstudio.adapt import commands as adapt_commands
from domainstudio.data import commands as data_commands
from domainstudio.gan import commands as gan_commands
from domainstudio.metrics import commands as metrics_commands
from domainstudio.models import commands as model_commands
from domainstudio.release import commands as release_commands
from domainstudio.report import commands as report_commands
from domainstudio.t2i import commands as t2i_commands

# In workflow order: data, source model, releases, adaptation and sampling, metrics, report, GAN baselines, t2i.
STAGES = (data_commands, model_commands, release_commands, adapt_commands, metrics_commands, report_commands,
          gan_commands, t2i_commands)


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
