"""The data verbs: render the embedded world's source set and target domains, and its overview figure."""
from __future__ import annotations


def cmd_render_source(a):
    from domainstudio.data.world import render_source

    render_source(a.world, a.out, a.count, a.resolution, a.seed)


def cmd_render_target(a):
    from domainstudio.data.world import render_target

    render_target(a.world, a.domain, a.out, a.shot_sets, a.reference, a.resolution, a.seed)


def cmd_world_figure(a):
    from domainstudio.data.world import domain_overview, world_module
    from domainstudio.report.figures import labelled_grid

    images = domain_overview(a.world, a.resolution, a.seed, per_domain=a.per_domain)
    labelled_grid(images, list(world_module(a.world).DOMAINS), a.per_domain, a.out)


def add_verbs(verb) -> None:
    s = verb("render-source", cmd_render_source, "Render the embedded world's source training set")
    s.add_argument("--world", default="faces"); s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, required=True); s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0)

    s = verb("render-target", cmd_render_target, "Render a target domain: nested K-shot sets and a reference set")
    s.add_argument("--world", default="faces"); s.add_argument("--domain", required=True); s.add_argument("--out", required=True)
    s.add_argument("--shot-sets", type=int, nargs="+", default=[1, 5, 10]); s.add_argument("--reference", type=int, required=True)
    s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0)

    s = verb("world-figure", cmd_world_figure, "A grid of example images of every domain of an embedded world")
    s.add_argument("--world", default="faces"); s.add_argument("--out", required=True)
    s.add_argument("--resolution", type=int, default=32); s.add_argument("--seed", type=int, default=0); s.add_argument("--per-domain", type=int, default=10)
