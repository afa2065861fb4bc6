# Runs and their paths. A run is one (world, domain, K shots, method, seed); every step of it writes under the
# same relative path, so the path is written once here.
RUN = "{world}/{domain}/{shots}shot/{method}/seed{seed}"  # models/, samples/, results/metrics/, checkpoints/
T2I_RUN = "{world}/t2i/{domain}/{shots}shot/{method}/seed{seed}"
KSHOT = "data/{world}/{domain}/{shots}shot"  # the K training images of a run
RUN_LOG = "{world}_{domain}_{shots}shot_{method}_seed{seed}"


def run_log(step):
    """The log file of one run's ``step`` job."""
    return f"logs/{step}/{RUN_LOG}.log"


def run_benchmark(step):
    """The benchmark file (time, memory) of one run's ``step`` job."""
    return f"logs/benchmarks/{step}/{RUN_LOG}.tsv"


def runs(domains=None, shots=None, methods=None):
    """Every (domain, shots, method, seed) of the main tables, or of a report overlay's subset; each (domain, method)
    cell runs its own seeds (``seeds`` and any ``extra_seeds`` naming it)."""
    return [
        dict(world=WORLD, domain=d, shots=k, method=m, seed=s)
        for d in (domains or config["domains"])
        for k in (shots or config["shots"])
        for m in (methods or config["methods"])
        for s in cell_seeds(config, d, m)
    ]


def run_dir(r):
    return f"results/metrics/{RUN.format(**r)}"


def metric_files(name, selection=None):
    """One metric file per run: intra_lpips, fid, fidelity, or diversity (embedded worlds only)."""
    return [f"{run_dir(r)}/{name}.json" for r in (runs() if selection is None else selection)]


TABLES = ["table1", "table2", "table3_ablation", "table4_shots"]
TABLE_REPORTED = {"table1": "--reported intra_lpips", "table2": "--reported fid"}


def table_runs(table):
    if table == "table3_ablation":
        a = REPORT.get("ablation", {})
        return runs(a.get("domains"), None, a.get("methods"))
    if table == "table4_shots":
        s = REPORT.get("shots", {})
        return runs(s.get("domains"), s.get("shots"), s.get("methods"))
    return runs()


def table_inputs(wildcards):
    return table_metric_files(wildcards.table)


def table_metric_files(table):
    """Every metric file of a table's runs."""
    names = ["intra_lpips", "fid", "fidelity"] + ["diversity"] * EMBEDDED  # one evaluate job writes all of a run's files
    return [f for n in names for f in metric_files(n, table_runs(table))]


CLAIM_TABLES = ["table1", "table2"]  # results/claims.csv decides the paper's claims on the runs of these tables


def claims_inputs(wildcards):
    return sorted({f for t in CLAIM_TABLES for f in table_metric_files(t)})


def claims_run_dirs():
    return sorted({run_dir(r) for t in CLAIM_TABLES for r in table_runs(t)})


def intra_lpips_files():
    return metric_files("intra_lpips")


def t2i_runs():
    """Every (domain, shots, method, seed) of the text-to-image branch."""
    return [
        dict(world=WORLD, domain=d, shots=k, method=m, seed=s)
        for d in T2I["domains"]
        for k in T2I["shots"]
        for m in T2I["methods"]
        for s in T2I["seeds"]
    ]


def t2i_intra_lpips_files():
    return [f"results/metrics/{T2I_RUN.format(**r)}/intra_lpips.json" for r in t2i_runs()]


def t2i_outputs():
    return ["results/t2i_table.csv"] if T2I.get("enabled", False) else []


def final_outputs():
    figures = [f"samples/{WORLD}/source/seed0"]  # holds grid.png
    if EMBEDDED:
        figures.append(f"results/figures/{WORLD}_domains.png")
    if GAN_ENABLED:
        figures.append(f"samples/{WORLD}/source_gan/seed0")  # the source GAN's grid.png
    return ["results/report.md", "results/claims.csv", *figures, *calibration_outputs(), *t2i_outputs()]


def calibration_outputs():
    """The calibration of the fidelity measures (embedded worlds): its Markdown page and figures."""
    if not EMBEDDED:
        return []
    return [f"results/calibration/{WORLD}.md", *calibration_figures()]


def calibration_figures():
    return [f"results/figures/{WORLD}_calibration_{d}.png" for d in config["domains"]] + [f"results/figures/{WORLD}_degradations.png"]


def report_figures():
    names = ["samples", "intra_lpips", "fid"] + [f"{d}_nearest" for d in config["domains"]]
    return [f"results/figures/{WORLD}_{n}.png" for n in names]


def sample_grid_report(folder):
    """A run's sample folder, its grid.png in Snakemake's HTML report (category Samples, one page per domain)."""
    return report(directory(folder), patterns=["{file,grid}.png"], caption="../report/samples.rst", category="Samples",
                  subcategory="{domain}", labels={"method": "{method}", "shots": "{shots}", "seed": "{seed}"})
