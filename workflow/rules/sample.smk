# Sampling: DDIM samples of adapted models (and a grid of the source model), as PNG folders.


rule sample:
    input:
        model=f"models/{RUN}",
        source="models/{world}/source",
    output:
        sample_grid_report(f"samples/{RUN}"),
    params:
        cfg=sample_config_json,
    wildcard_constraints:
        method=DIFFUSION_METHODS_RE,
    threads: JOB_THREADS
    priority: 10
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        run_log("sample"),
    benchmark:
        run_benchmark("sample"),
    shell:
        "domainstudio sample --model {input.model} --source-model {input.source} --out {output} "
        "--config-json {params.cfg:q} --threads {threads} > {log} 2>&1"


rule sample_source:
    input:
        "models/{world}/source",
    output:
        report(directory("samples/{world}/source/seed{seed}"), patterns=["{file,grid}.png"], caption="../report/source.rst",
               category="Source models", labels={"model": "source DDPM", "seed": "{seed}"}),
    params:
        cfg=source_sample_config_json,
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/sample_source/{world}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/sample_source/{world}_seed{seed}.tsv",
    shell:
        "domainstudio sample --model {input} --out {output} --config-json {params.cfg:q} --n-samples 64 "
        "--threads {threads} > {log} 2>&1"
