# DomainStudio pipeline: few-shot, domain-driven adaptation of diffusion models.
#   snakemake --cores all results/table1.csv             (main job, embedded default: the diffusion rows)
#   snakemake --cores all results/table1.csv --configfile config/baselines.yaml   (+ DPMs-ANT and the GAN baselines)
#   snakemake --cores all --configfile config/smoke.yaml  (smoke run)
# The DAG lives here and in workflow/rules/; params.yaml is the one configuration.

configfile: "params.yaml"
report: "workflow/report/workflow.rst"  # snakemake --report results/report.html: tables, figures, grids, provenance


include: "workflow/rules/common.smk"
include: "workflow/rules/paths.smk"
include: "workflow/rules/settings.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/source.smk"
include: "workflow/rules/adapt.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/t2i.smk"
include: "workflow/rules/release.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
