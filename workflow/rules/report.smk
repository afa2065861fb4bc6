# Report: the paper's tables (CSV + Markdown), the claims table, figures, results/report.md and the DVC metrics summary.


localrules:
    table,
    claims,
    figures,
    report,
    calibration_report,


rule table:
    input:
        table_inputs,
    output:
        csv=report("results/{table}.csv", caption="../report/table.rst", category="Tables", labels={"table": "{table}"}),
        md="results/{table}.md",
    params:
        runs=table_run_dirs,
        reported=table_reported_arg,
    log:
        "logs/report/{table}.log",
    benchmark:
        "logs/benchmarks/report/{table}.tsv",
    shell:
        "domainstudio table --table {wildcards.table} {params.reported} --out {output.csv} {params.runs} > {log} 2>&1"


rule claims:
    """Each claim of the paper per domain and DomainStudio variant, decided over seeds (95 % Welch intervals)."""
    input:
        claims_inputs,
    output:
        csv=report("results/claims.csv", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    params:
        runs=" ".join(claims_run_dirs()),
    log:
        "logs/report/claims.log",
    benchmark:
        "logs/benchmarks/report/claims.tsv",
    shell:
        "domainstudio claims --out {output.csv} {params.runs} > {log} 2>&1"


rule figures:
    input:
        samples=[f"samples/{RUN.format(**r)}" for r in runs()],
        table1="results/table1.csv",
        table2="results/table2.csv",
        backbone=[f"models/{WORLD}/metric_backbone"] if LPIPS_BACKBONE == "embedded" else [],
    output:
        [report(f, caption="../report/figure.rst", category="Figures", labels={"figure": Path(f).stem}) for f in report_figures()],
    params:
        backbone=figures_backbone_args,
        domains=" ".join(config["domains"]),
        methods=" ".join(config["methods"]),
        shots=max(config["shots"]),
        seed=min(config["seeds"]),
        resolution=RESOLUTION,
        world=WORLD,
    log:
        "logs/report/figures.log",
    benchmark:
        "logs/benchmarks/report/figures.tsv",
    shell:
        "domainstudio figures --world {params.world} --samples-root samples/{params.world} --data-root data/{params.world} "
        "--domains {params.domains} --methods {params.methods} --shots {params.shots} --seed {params.seed} "
        "--resolution {params.resolution} {params.backbone} --table1 {input.table1} --table2 {input.table2} "
        "--out-dir results/figures > {log} 2>&1"


rule report:
    input:
        tables=expand("results/{table}.csv", table=TABLES),
        claims="results/claims.csv",
        figures=report_figures(),
    output:
        report="results/report.md",
        metrics="results/metrics.json",
    params:
        cfg=json.dumps(config),
        runs=" ".join(sorted({run_dir(r) for t in TABLES for r in table_runs(t)})),
    log:
        "logs/report/report.log",
    benchmark:
        "logs/benchmarks/report/report.tsv",
    shell:
        "domainstudio report --config-json {params.cfg:q} --results results --benchmarks logs/benchmarks "
        "--out {output.report} --metrics-json {output.metrics} {params.runs} > {log} 2>&1"


rule calibration_report:
    """The calibration tables of every domain beside the spread between methods in table 2, and its figures."""
    input:
        calibrations=expand("results/calibration/{world}/{domain}.csv", world=WORLD, domain=config["domains"]),
        table2="results/table2.csv",
    output:
        md=f"results/calibration/{WORLD}.md",
        figures=[report(f, caption="../report/calibration.rst", category="Calibration", labels={"figure": Path(f).stem})
                 for f in calibration_figures()],
    params:
        domains=" ".join(config["domains"]),
        resolution=RESOLUTION,
        world=WORLD,
    log:
        f"logs/report/calibration_{WORLD}.log",
    benchmark:
        f"logs/benchmarks/report/calibration_{WORLD}.tsv",
    shell:
        "domainstudio calibration-report --world {params.world} --domains {params.domains} --data-root data/{params.world} "
        "--resolution {params.resolution} --table2 {input.table2} --figure-dir results/figures --out {output.md} "
        "{input.calibrations} > {log} 2>&1"
