"""The paper's claims as a table the workflow decides from the per-seed metric values (results/claims.csv + .md).

One row per claim per (world, domain, shots) per DomainStudio variant present among the methods. A claim compares the
variant (a) with a baseline (b) on one measure: the means over seeds, the difference d = mean(a) - mean(b) and its
95 % Welch interval

    d +- t_{0.975, nu} * se,   se^2 = s_a^2 / n_a + s_b^2 / n_b,
    nu = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1))   (Welch-Satterthwaite),

with s^2 the sample variance (ddof 1) of a side's per-seed values. Unpaired on purpose: two methods' runs with the same
seed number share nothing beyond the number (their adaptation, sampling and metric draws differ), and the variances
of two methods need not be equal. With both variances 0 the interval is the point d; with fewer than 2 seeds on a side
there is no interval.

Verdict, with the claimed side of each measure read as a gain g = d (higher is better) or g = -d (lower is better)
and the claim g > -margin (margin 0 for "more" / "better", STYLE_MARGIN for "kept"): ``holds`` when the whole
interval lies on the claimed side, ``fails`` when it lies wholly on the other side, ``undecided`` when it straddles
the boundary, ``undecided (1 seed)`` without an interval, ``undecided (no values)`` when a side was not measured.

An undecided row also says why not: ``seeds_needed``, the seeds per side at which the interval would leave the
boundary were the means and sample stds to stay as measured. A difference small against the spread over seeds needs
many; beyond ``MOST_SEEDS`` none is named.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from domainstudio.atomic import atomic_file
from domainstudio.registry import METHOD_FAMILIES

LEVEL = 0.95          # two-sided coverage of the interval
STYLE_MARGIN = 0.05   # "target style kept": the in-domain fraction at most 5 points below the baseline's
MOST_SEEDS = 64       # seeds_needed names no count beyond this


@dataclass(frozen=True)
class Measure:
    name: str          # the run records' column (tables 1 and 2)
    claim: str         # what the paper says of it
    better: str        # "higher" or "lower"
    margin: float = 0.0  # the claim is gain > -margin: 0 for "more" / "better", > 0 for "not worse" (non-inferiority)

    def gain(self, d: float) -> float:
        """A difference d = variant - baseline read on the claimed side: d when higher is better, -d when lower is."""
        return d if self.better == "higher" else -d

    @property
    def claimed(self) -> str:
        """The claimed side of the difference d = variant - baseline, in words of d."""
        bound = (-self.margin if self.better == "higher" else self.margin) + 0.0  # + 0.0: no "-0"
        return f"d {'>' if self.better == 'higher' else '<'} {bound:g}"


DIVERSITY = (Measure("intra_lpips", "more diverse", "higher"),)  # table 1
FIDELITY = (Measure("fid", "better fidelity", "lower"), Measure("kid", "better fidelity", "lower"),  # table 2
            Measure("c2st_accuracy", "better fidelity", "lower"),  # 0.5: indistinguishable from the reference
            Measure("swd", "better fidelity", "lower"),
            Measure("precision", "better fidelity", "higher"), Measure("density", "better fidelity", "higher"))
STYLE = (Measure("in_domain", "target style kept", "higher", STYLE_MARGIN),)  # table 2, embedded worlds
ALWAYS = ("intra_lpips", "fid")  # every evaluate job writes them: rows stay (status missing) even when no run was measured

VARIANTS = ("domainstudio", "domainstudio-paper", "domainstudio-official")
PLAIN = {"domainstudio-official": ("ddpm-ft-official", "ddpm-ft")}  # the first present is the variant's plain fine-tuning
LATER = "dpms-ant"   # a later method: compared, not claimed
GANS = tuple(m for m, f in METHOD_FAMILIES.items() if f == "gan")

COLUMNS = ["world", "domain", "shots", "variant", "baseline", "kind", "claim", "measure", "better", "claimed",
           "mean_variant", "mean_baseline", "difference", "ci_low", "ci_high", "df", "n_seeds_variant", "n_seeds_baseline",
           "verdict", "seeds_needed", "status"]


def comparisons(methods) -> list[tuple[str, str, str, tuple[Measure, ...]]]:
    """(variant, baseline, kind, measures) for the methods present: each variant against its plain fine-tuning
    (diverse, fidelity, style), each GAN baseline (diverse, fidelity) and DPMs-ANT (as plain fine-tuning, a comparison)."""
    methods = set(methods)
    out = []
    for v in (v for v in VARIANTS if v in methods):
        plain = next((b for b in PLAIN.get(v, ("ddpm-ft",)) if b in methods), None)
        if plain:
            out.append((v, plain, "claim", DIVERSITY + FIDELITY + STYLE))
        out += [(v, g, "claim", DIVERSITY + FIDELITY) for g in GANS if g in methods]
        if LATER in methods:
            out.append((v, LATER, "comparison", DIVERSITY + FIDELITY + STYLE))
    return out


def welch_interval(a, b, level: float = LEVEL) -> tuple[float, float, float]:
    """(low, high, nu) of mean(a) - mean(b): d +- t_{(1+level)/2, nu} * se, se^2 = s_a^2/n_a + s_b^2/n_b, nu by
    Welch-Satterthwaite. NaNs with fewer than 2 values on a side; the point d (nu NaN) when both variances are 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan, np.nan
    d = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    if se2 == 0:
        return d, d, np.nan
    nu = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf((1 + level) / 2, nu) * np.sqrt(se2)
    return d - half, d + half, nu


def seeds_needed(s_a: float, s_b: float, gap: float, level: float = LEVEL, most: int = MOST_SEEDS) -> float:
    """The smallest n seeds per side whose Welch interval of d would exclude a boundary ``gap`` away from d, were the
    sample stds s_a and s_b to stay: t_{(1+level)/2, nu(n)} * sqrt((s_a^2 + s_b^2) / n) < gap, with
    nu(n) = (n - 1) (s_a^2 + s_b^2)^2 / (s_a^4 + s_b^4) (Welch-Satterthwaite at equal n). NaN beyond ``most`` seeds
    or when d sits on the boundary. A planning estimate: more seeds move the means and stds too."""
    va, vb = s_a ** 2, s_b ** 2
    if not gap > 0:
        return np.nan
    if va + vb == 0:
        return 2.0
    for n in range(2, most + 1):
        nu = (n - 1) * (va + vb) ** 2 / (va ** 2 + vb ** 2)
        if stats.t.ppf((1 + level) / 2, nu) * np.sqrt((va + vb) / n) < gap:
            return float(n)
    return np.nan


def verdict(low: float, high: float, n_variant: int, n_baseline: int, measure: Measure) -> str:
    """holds / fails / undecided: where the interval [low, high] of d lies against the claim gain > -margin."""
    if min(n_variant, n_baseline) == 0:
        return "undecided (no values)"
    if min(n_variant, n_baseline) < 2:
        return "undecided (1 seed)"
    g_low, g_high = sorted((measure.gain(low), measure.gain(high)))
    if g_low > -measure.margin:
        return "holds"
    if g_high < -measure.margin:
        return "fails"
    return "undecided"


def _side(cell: pd.DataFrame, method: str, measure: str) -> tuple[np.ndarray, str | None]:
    """A method's per-seed values of ``measure`` in one cell, and what is missing of it (None if nothing)."""
    g = cell[cell["method"] == method]
    measured = g[g["status"] == "measured"]
    values = pd.to_numeric(measured[measure], errors="coerce").dropna().to_numpy() if measure in measured else np.array([])
    if g.empty or measured.empty:
        return values, f"{method} missing"
    missing = sorted(g.loc[g["status"] != "measured", "seed"])
    return values, f"{method} missing seeds {missing}" if missing else None


def claims_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every claim and comparison of every (world, domain, shots) cell of ``runs`` (``tables.run_records``)."""
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    present = set(ALWAYS) | {c for c in runs.columns if runs[c].notna().any()}
    rows = []
    for (world, domain, shots), cell in runs.groupby(["world", "domain", "shots"], sort=True):
        for variant, baseline, kind, measures in comparisons(cell["method"].unique()):
            for m in (m for m in measures if m.name in present):
                a, miss_a = _side(cell, variant, m.name)
                b, miss_b = _side(cell, baseline, m.name)
                low, high, nu = welch_interval(a, b)
                decision, needed = verdict(low, high, len(a), len(b), m), np.nan
                if decision == "undecided":  # how far d lies from the claim's boundary, against the spread over seeds
                    gap = abs(m.gain(a.mean() - b.mean()) + m.margin)
                    needed = seeds_needed(a.std(ddof=1), b.std(ddof=1), gap)
                rows.append({"world": world, "domain": domain, "shots": shots, "variant": variant, "baseline": baseline,
                             "kind": kind, "claim": m.claim, "measure": m.name, "better": m.better, "claimed": m.claimed,
                             "mean_variant": a.mean() if len(a) else np.nan, "mean_baseline": b.mean() if len(b) else np.nan,
                             "difference": a.mean() - b.mean() if len(a) and len(b) else np.nan,
                             "ci_low": low, "ci_high": high, "df": nu, "n_seeds_variant": len(a), "n_seeds_baseline": len(b),
                             "verdict": decision, "seeds_needed": needed,
                             "status": "; ".join(s for s in (miss_a, miss_b) if s) or "measured"})
    return pd.DataFrame(rows, columns=COLUMNS)


def undecided_cells(df: pd.DataFrame, kinds=("claim",), within: int | None = None) -> dict[str, list[str]]:
    """Per domain, the methods on either side of a row of ``kinds`` that an interval left undecided (or that had
    one seed): the cells more seeds would decide (an ``extra_seeds`` block each). Rows without values are left out:
    their runs are missing, not too few. With ``within``, an undecided row counts only if its ``seeds_needed`` is at
    most that many seeds per side."""
    open_rows = df[df["kind"].isin(kinds) & df["verdict"].isin(["undecided", "undecided (1 seed)"])]
    if within is not None:
        reachable = (open_rows["verdict"] == "undecided (1 seed)") | (open_rows["seeds_needed"] <= within)
        open_rows = open_rows[reachable]
    cells: dict[str, set[str]] = {}
    for _, r in open_rows.iterrows():
        cells.setdefault(r["domain"], set()).update((r["variant"], r["baseline"]))
    return {domain: sorted(methods) for domain, methods in sorted(cells.items())}


def _num(v) -> str:
    return "" if pd.isna(v) else f"{v:.4g}"


def summary(df: pd.DataFrame) -> str:
    """One line per kind: how many rows hold, fail and stay undecided."""
    lines = []
    for kind, label in (("claim", "Claims of the paper"), ("comparison", "Comparisons with DPMs-ANT (no claim)")):
        counts = df.loc[df["kind"] == kind, "verdict"].value_counts()
        if counts.sum():
            lines.append(f"- {label}: " + ", ".join(f"{v} {n}" for v, n in counts.sort_index().items()) + f" (of {counts.sum()} rows).")
    return "\n".join(lines)


VERDICT_MARKS = {"holds": "holds", "fails": "fails", "undecided": "?", "undecided (1 seed)": "1 seed",
                 "undecided (no values)": "-"}


def verdict_matrix(df: pd.DataFrame) -> str:
    """Per (world, domain, shots): one line per variant and baseline, one column per measure, the verdict in each
    cell (? undecided, - not measured): the whole table at a glance."""
    measures = [m.name for m in DIVERSITY + FIDELITY + STYLE if m.name in set(df["measure"])]
    blocks = []
    for (world, domain, shots), cell in df.groupby(["world", "domain", "shots"], sort=True):
        head = ["variant", "against", "kind", *measures]
        lines = [f"{world} / {domain} / {shots} shots:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (variant, baseline), pair in cell.groupby(["variant", "baseline"], sort=False):
            marks = dict(zip(pair["measure"], pair["verdict"].map(VERDICT_MARKS)))
            lines.append("| " + " | ".join([variant, baseline, pair["kind"].iloc[0], *(marks.get(m, "") for m in measures)]) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _needed(r) -> str:
    """An undecided row's seeds_needed in words: the count, or more than MOST_SEEDS."""
    if r.verdict != "undecided":
        return ""
    return f"{int(r.seeds_needed)}" if not pd.isna(r.seeds_needed) else f"> {MOST_SEEDS}"


def markdown(df: pd.DataFrame) -> str:
    """The readable twin: a summary of the verdicts, the verdicts at a glance per cell, then one line per row, d with
    its 95 % Welch interval."""
    head = ["domain", "shots", "variant", "against", "kind", "claim", "measure", "claimed", "variant mean", "baseline mean",
            "d [95 % CI]", "seeds", "verdict", "seeds to decide", "status"]
    lines = [summary(df), "", verdict_matrix(df), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        ci = f" [{_num(r.ci_low)}, {_num(r.ci_high)}]" if not pd.isna(r.ci_low) else ""
        cells = [r.domain, r.shots, r.variant, r.baseline, r.kind, r.claim, f"{r.measure} ({r.better} better)", r.claimed,
                 _num(r.mean_variant), _num(r.mean_baseline), _num(r.difference) + ci,
                 f"{r.n_seeds_variant} / {r.n_seeds_baseline}", f"**{r.verdict}**" if r.verdict in ("holds", "fails") else r.verdict,
                 _needed(r), r.status]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def write_claims(runs: pd.DataFrame, out: str | Path) -> pd.DataFrame:
    """results/claims.csv and its Markdown twin beside it."""
    df = claims_table(runs)
    with atomic_file(out) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_file(Path(out).with_suffix(".md")) as tmp:
        tmp.write_text(markdown(df))
    return df
