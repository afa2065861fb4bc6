# Report: tables from the per-run metric files.


localrules:
    table1,


rule table1:
    input:
        intra_lpips_files(),
    output:
        "results/table1.csv",
    log:
        "logs/report/table1.log",
    shell:
        "domainstudio table --out {output} {input} > {log} 2>&1"
