# Text-to-image DomainStudio: DreamBooth-style fine-tuning of a Stable Diffusion pipeline on the
# K-shot target images, baseline `dreambooth` and `domainstudio-t2i`, then samples and Intra-LPIPS.
# Only active with t2i.enabled. t2i.pipeline "tiny" builds the offline tiny pipeline here; otherwise it is a
# hub id or a local diffusers folder, loaded by the jobs themselves. Rules run single-threaded: the tiny
# pipeline's small ops only lose from thread synchronisation on a shared CPU.

if T2I.get("enabled", False):

    rule build_tiny_sd:
        output:
            directory("models/{world}/t2i/tiny-sd"),
        params:
            resolution=T2I["resolution"],
        log:
            "logs/t2i/build_tiny_sd_{world}.log",
        benchmark:
            "logs/benchmarks/t2i/build_tiny_sd_{world}.tsv",
        shell:
            "domainstudio build-tiny-sd --out {output} --resolution {params.resolution} > {log} 2>&1"

    rule t2i_class_images:
        input:
            t2i_pipeline_input,
        output:
            directory("samples/{world}/t2i/class_images"),
        params:
            pipeline=t2i_pipeline,
            prompt=T2I["class_prompt"],
            n_images=T2I["class_images"]["count"],
            seed=T2I["class_images"]["seed"],
            resolution=T2I["resolution"],
            cfg=t2i_class_sample_json(),
        threads: JOB_THREADS
        resources:
            mem_mb=8000,
            runtime=60,
        log:
            "logs/t2i/class_images_{world}.log",
        benchmark:
            "logs/benchmarks/t2i/class_images_{world}.tsv",
        shell:
            "domainstudio t2i-class-images --pipeline {params.pipeline:q} --prompt {params.prompt:q} --count {params.n_images} "
            "--seed {params.seed} --resolution {params.resolution} --config-json {params.cfg:q} --out {output} "
            "--threads {threads} > {log} 2>&1"

    rule t2i_adapt:
        input:
            t2i_pipeline_input,
            images=KSHOT,
            classes="samples/{world}/t2i/class_images",
        output:
            directory(f"models/{T2I_RUN}"),
        params:
            pipeline=t2i_pipeline,
            resolution=T2I["resolution"],
            cfg=t2i_adapt_config_json,
            checkpoint=f"checkpoints/{T2I_RUN}.pt",
        threads: JOB_THREADS
        resources:
            mem_mb=16000,
            runtime=240,
        log:
            run_log("t2i/adapt"),
        benchmark:
            run_benchmark("t2i/adapt"),
        shell:
            "domainstudio t2i-adapt --pipeline {params.pipeline:q} --instance-images {input.images} --shots {wildcards.shots} "
            "--class-images {input.classes} --method {wildcards.method} --resolution {params.resolution} "
            "--config-json {params.cfg:q} --checkpoint {params.checkpoint} --out {output} --threads {threads} > {log} 2>&1"

    rule t2i_sample:
        input:
            f"models/{T2I_RUN}",
        output:
            directory(f"samples/{T2I_RUN}"),
        params:
            resolution=T2I["resolution"],
            cfg=t2i_sample_json(),
        threads: JOB_THREADS
        resources:
            mem_mb=8000,
            runtime=120,
        log:
            run_log("t2i/sample"),
        benchmark:
            run_benchmark("t2i/sample"),
        shell:
            "domainstudio t2i-sample --model {input} --resolution {params.resolution} --config-json {params.cfg:q} "
            "--seed {wildcards.seed} --out {output} --threads {threads} > {log} 2>&1"

    rule t2i_intra_lpips:
        input:
            samples=f"samples/{T2I_RUN}",
            train=KSHOT,
            reference="data/{world}/{domain}/reference",
            backbone=lpips_backbone_input,
        output:
            f"results/metrics/{T2I_RUN}/intra_lpips.json",
        params:
            backbone=lpips_backbone_args,
            cap=config["evaluate"]["cluster_cap"],
            seed=config["evaluate"]["seed"],
            resolution=T2I["resolution"],
        threads: JOB_THREADS
        resources:
            mem_mb=4000,
            runtime=30,
        log:
            run_log("t2i/intra_lpips"),
        benchmark:
            run_benchmark("t2i/intra_lpips"),
        shell:
            "domainstudio intra-lpips --samples {input.samples} --train {input.train} --shots {wildcards.shots} "
            "--reference {input.reference} --resolution {params.resolution} {params.backbone} "
            "--cluster-cap {params.cap} --seed {params.seed} --threads {threads} --out {output} "
            "--meta world={wildcards.world} domain={wildcards.domain} shots={wildcards.shots} "
            "method={wildcards.method} family=t2i seed={wildcards.seed} > {log} 2>&1"

    localrules:
        t2i_table,

    rule t2i_table:
        input:
            t2i_intra_lpips_files(),
        output:
            "results/t2i_table.csv",
        log:
            "logs/t2i/table.log",
        benchmark:
            "logs/benchmarks/t2i/table.tsv",
        params:
            runs=t2i_table_run_dirs,
        shell:
            "domainstudio table --table table1 --out {output} {params.runs} > {log} 2>&1"
