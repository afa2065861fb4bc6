# Source model: imported from a release (the default: releases/, docs/releases.md), a local folder or a hub id, or
# pre-trained here on the source images (config/release.yaml). Both produce the same artifact, a diffusers DDPMPipeline
# folder; a release is checked against its manifest when it is loaded.

if config["source"]["kind"] == "pretrain":

    rule pretrain_source:
        input:
            "data/{world}/source",
        output:
            directory("models/{world}/source"),
        params:
            cfg=source_config_json(),
            resolution=RESOLUTION,
            checkpoint="checkpoints/{world}/source.pt",
            snapshots=source_snapshot_args,
        threads: TRAINING_THREADS
        resources:
            mem_mb=8000,
            runtime=120,
        log:
            "logs/pretrain_source/{world}.log",
        benchmark:
            "logs/benchmarks/pretrain_source/{world}.tsv",
        shell:
            "domainstudio pretrain --images {input} --out {output} --resolution {params.resolution} "
            "--config-json {params.cfg:q} --checkpoint {params.checkpoint} {params.snapshots} --threads {threads} > {log} 2>&1"

else:

    localrules:
        import_source,  # on the submitting node: a hub download needs the network compute nodes often lack

    rule import_source:
        input:
            source_release_input,
        output:
            directory("models/{world}/source"),
        params:
            pretrained=config["source"]["pretrained"],
            resolution=RESOLUTION,
            adm=adm_config_json(),
        log:
            "logs/import_source/{world}.log",
        benchmark:
            "logs/benchmarks/import_source/{world}.tsv",
        shell:
            "domainstudio import-source --pretrained {params.pretrained:q} --out {output} "
            "--resolution {params.resolution} --adm-json {params.adm:q} > {log} 2>&1"
