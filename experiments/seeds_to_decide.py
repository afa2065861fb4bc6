"""The extra_seeds overlay that would decide the claims a claims table left undecided.

    python experiments/seeds_to_decide.py --claims results/claims.csv --seeds 3 4 5 6 7 --within 8 > config/seeds_decide.yaml

Reads a claims table (results/claims.csv, rule ``claims``), finds per domain the methods on either side of a claim
whose 95 % interval straddled its boundary (or that had one seed), and prints an overlay with one ``extra_seeds``
block per domain giving those cells the seeds named. Run the tables with it on top of the overlays the claims table
came from; the tables and the claims table then say how many seeds each row has (``n_seeds``). ``--comparisons``
also plans the DPMs-ANT comparisons. ``--within N`` plans only the claims whose ``seeds_needed`` (the seeds per side
at which the interval would leave the boundary, were the means and stds to stay) is at most N: seeds are added up to
eight in all, and a claim that would need more stays undecided with its count in the table.
"""
from __future__ import annotations

import argparse

import pandas as pd
import yaml

from domainstudio.report.claims import undecided_cells


def overlay(cells: dict[str, list[str]], seeds: list[int], source: str) -> str:
    head = (f"# Seeds {seeds} for the cells whose claims {source} left undecided (experiments/seeds_to_decide.py).\n"
            "# Add it after the overlays that table came from, e.g.\n"
            "#   snakemake --cores all results/table1.csv results/table2.csv results/claims.csv \\\n"
            "#     --configfile config/baselines.yaml config/seeds3.yaml config/seeds_decide.yaml\n")
    blocks = [{"domains": [domain], "methods": methods, "seeds": list(seeds)} for domain, methods in cells.items()]
    return head + yaml.safe_dump({"extra_seeds": blocks}, default_flow_style=None, sort_keys=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--claims", default="results/claims.csv")
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds to add (the tables' seeds are kept)")
    p.add_argument("--comparisons", action="store_true", help="also the comparisons with DPMs-ANT")
    p.add_argument("--within", type=int, help="only claims whose seeds_needed is at most this many seeds per side")
    a = p.parse_args()
    kinds = ("claim", "comparison") if a.comparisons else ("claim",)
    print(overlay(undecided_cells(pd.read_csv(a.claims), kinds, a.within), a.seeds, a.claims), end="")


if __name__ == "__main__":
    main()
