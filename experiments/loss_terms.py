"""Which term drives an adaptation: each logged loss term's mean over the training steps, times its weight, and its
share of the weighted sum, per run.

    python experiments/loss_terms.py models/faces/sketches/10shot/domainstudio-official/seed*
    python experiments/loss_terms.py --steps 1 50 <runs>      # the first 50 steps only

Reads each run's ``train_log.csv`` (one row per logged step: ``l_simple``, ``l_img``, ``l_hf``, ``l_hfmse``, ...)
and ``adaptation.json`` (the weights it trained with; L_simple has weight 1). The weighted means add up to the mean
of the logged ``loss`` where every term is logged.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

TERMS = ("l_simple", "l_img", "l_hf", "l_hfmse")


def term_shares(run: Path, steps: tuple[int, int] | None = None) -> dict[str, float]:
    """{term: weighted mean over steps} and {term share: fraction of their sum} of one adapted run, over every
    logged step or the steps first..last (inclusive)."""
    log = pd.read_csv(run / "train_log.csv")
    if steps is not None:
        log = log[log["step"].between(*steps)]
    weights = {"l_simple": 1.0, **json.loads((run / "adaptation.json").read_text()).get("weights", {})}
    weighted = {t: weights.get(t, 0.0) * log[t].mean() for t in TERMS if t in log}
    total = sum(weighted.values())
    return {**{f"{t} (weighted mean)": v for t, v in weighted.items()},
            **{f"{t} share": v / total for t, v in weighted.items()},
            "grad_norm (mean)": log["grad_norm"].mean() if "grad_norm" in log else float("nan")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="adapted model folders (models/<world>/<domain>/<K>shot/<method>/seed<s>)")
    p.add_argument("--steps", type=int, nargs=2, metavar=("FIRST", "LAST"), help="only these steps (inclusive)")
    a = p.parse_args()
    missing = [str(r) for r in a.runs if not (r / "train_log.csv").is_file() or not (r / "adaptation.json").is_file()]
    if missing:
        p.error("no train_log.csv and adaptation.json in: " + ", ".join(missing))
    table = pd.DataFrame({str(r): term_shares(r, a.steps) for r in a.runs}).T
    print(table.to_markdown(floatfmt=".4g"))


if __name__ == "__main__":
    main()
