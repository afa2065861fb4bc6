# GAN baselines (TGAN, FreezeD, EWC, CDC): a source GAN pre-trained on the same source images, adapted to the same
# K-shot sets and sampled into the same folders as the diffusion methods, so the metric rules treat all alike.
# Independent of the diffusion source model. Active when config["methods"] names a GAN method (config/baselines.yaml)
# or the source GAN is trained here (gan.pretrained: null, config/release.yaml).

if GAN_ENABLED:

    if config["gan"].get("pretrained"):

        localrules:
            import_source_gan,

        rule import_source_gan:
            input:
                gan_release_input,
            output:
                directory("models/{world}/source_gan"),
            params:
                pretrained=config["gan"]["pretrained"],
                resolution=RESOLUTION,
            log:
                "logs/import_source_gan/{world}.log",
            benchmark:
                "logs/benchmarks/import_source_gan/{world}.tsv",
            shell:
                "domainstudio import-gan --pretrained {params.pretrained:q} --out {output} "
                "--resolution {params.resolution} > {log} 2>&1"

    else:

        rule pretrain_source_gan:
            input:
                "data/{world}/source",
            output:
                directory("models/{world}/source_gan"),
            params:
                cfg=gan_pretrain_config_json(),
                resolution=RESOLUTION,
                checkpoint="checkpoints/{world}/source_gan.pt",
                snapshots=gan_snapshot_args,
            threads: TRAINING_THREADS
            resources:
                mem_mb=4000,
                runtime=240,
            log:
                "logs/pretrain_source_gan/{world}.log",
            benchmark:
                "logs/benchmarks/pretrain_source_gan/{world}.tsv",
            shell:
                "domainstudio pretrain-gan --images {input} --out {output} --resolution {params.resolution} "
                "--config-json {params.cfg:q} --checkpoint {params.checkpoint} {params.snapshots} --threads {threads} > {log} 2>&1"

    rule sample_source_gan:
        input:
            "models/{world}/source_gan",
        output:
            report(directory("samples/{world}/source_gan/seed{seed}"), patterns=["{file,grid}.png"], caption="../report/source.rst",
                   category="Source models", labels={"model": "source GAN", "seed": "{seed}"}),
        threads: JOB_THREADS
        log:
            "logs/sample_source_gan/{world}_seed{seed}.log",
        benchmark:
            "logs/benchmarks/sample_source_gan/{world}_seed{seed}.tsv",
        shell:
            "domainstudio sample-gan --model {input} --out {output} --n-samples 64 --seed {wildcards.seed} "
            "--threads {threads} > {log} 2>&1"

    rule ewc_fisher:
        input:
            "models/{world}/source_gan",
        output:
            EWC_FISHER,
        params:
            cfg=ewc_fisher_config_json,
        threads: JOB_THREADS
        resources:
            mem_mb=2000,
            runtime=20,
        log:
            "logs/ewc_fisher/{world}_seed{seed}.log",
        benchmark:
            "logs/benchmarks/ewc_fisher/{world}_seed{seed}.tsv",
        shell:
            "domainstudio ewc-fisher --source {input} --seed {wildcards.seed} --config-json {params.cfg:q} --out {output} "
            "--threads {threads} > {log} 2>&1"

    rule adapt_gan:
        input:
            unpack(gan_fisher_input),
            source="models/{world}/source_gan",
            images=KSHOT,
        output:
            directory(f"models/{RUN}"),
        wildcard_constraints:
            method=GAN_METHODS_RE,
        params:
            cfg=gan_adapt_config_json,
            fisher=gan_fisher_arg,
        threads: JOB_THREADS
        resources:
            mem_mb=2000,
            runtime=20,
        log:
            run_log("adapt_gan"),
        benchmark:
            run_benchmark("adapt_gan"),
        shell:
            "domainstudio adapt-gan --source {input.source} --images {input.images} --shots {wildcards.shots} "
            "--method {wildcards.method} --config-json {params.cfg:q} {params.fisher} --out {output} --threads {threads} > {log} 2>&1"

    rule sample_gan:
        input:
            f"models/{RUN}",
        output:
            sample_grid_report(f"samples/{RUN}"),
        wildcard_constraints:
            method=GAN_METHODS_RE,
        params:
            n=config["sample"]["n_samples"],
            batch=gan_sample_batch_size(),
        threads: JOB_THREADS
        resources:
            mem_mb=2000,
            runtime=10,
        log:
            run_log("sample_gan"),
        benchmark:
            run_benchmark("sample_gan"),
        shell:
            "domainstudio sample-gan --model {input} --out {output} --n-samples {params.n} --seed {wildcards.seed} "
            "--batch-size {params.batch} --threads {threads} > {log} 2>&1"
