# Adaptation of the source model to K target images, one job per domain x shots x method x seed.


rule adapt:
    input:
        unpack(adapt_source_images),
        source="models/{world}/source",
        images=KSHOT,
    output:
        directory(f"models/{RUN}"),
    params:
        cfg=adapt_config_json,
        resolution=RESOLUTION,
        checkpoint=f"checkpoints/{RUN}.pt",
        source_images=adapt_source_images_arg,
    wildcard_constraints:
        method=DIFFUSION_METHODS_RE,
    threads: JOB_THREADS
    priority: 20  # the longest jobs first (workflow/rules/common.smk: threads)
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        run_log("adapt"),
    benchmark:
        run_benchmark("adapt"),
    shell:
        "domainstudio adapt --source {input.source} --images {input.images} --shots {wildcards.shots} "
        "--method {wildcards.method} --resolution {params.resolution} --config-json {params.cfg:q} "
        "--checkpoint {params.checkpoint} {params.source_images} --out {output} --threads {threads} > {log} 2>&1"
