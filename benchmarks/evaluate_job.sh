#!/usr/bin/env bash
# Wall time of one evaluate job at several commits, alternately, in one run (the ratio is what to read: machines of
# one kind differ by 1.5x). Run from a workspace where the main job has run (samples, reference statistics, metric
# backbone); each commit's code is checked out into a temporary worktree of this repository and scores the same run
# with that commit's own evaluate arguments, one thread.
#
#   bash benchmarks/evaluate_job.sh [--domain babies] [--method domainstudio] [--rounds 2] COMMIT [COMMIT ...]
#
# Prints one line per commit and round: seconds and the 1-minute load average.
set -euo pipefail
domain=babies; method=domainstudio; rounds=2
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --domain) domain=$2; shift 2 ;; --method) method=$2; shift 2 ;; --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "name at least one commit" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
run="faces/$domain/10shot/$method/seed0"
[[ -d "samples/$run/images" ]] || { echo "samples/$run/images: run the main job in this workspace first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'for c in "$@"; do git -C "$repo" worktree remove --force "$tmp/$c" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
for c in "$@"; do git -C "$repo" worktree add -q --detach "$tmp/$c" "$c"; done
for round in $(seq "$rounds"); do
  for c in "$@"; do
    out="$tmp/out/$c/$round"; mkdir -p "$out"
    args=$(PYTHONPATH="$tmp/$c/src" python - "$tmp/$c/params.yaml" "$run" "$out" <<'PY'
import shlex, sys
import yaml
try:
    from domainstudio.params.arguments import evaluate_arguments
except ImportError:  # commits before the verbs moved to their own layer
    from domainstudio.config import evaluate_arguments
params_file, run, out = sys.argv[1:]
p = yaml.safe_load(open(params_file))
world, domain, shots, method, seed = run.split("/")
info = {"world": world, "domain": domain, "shots": shots.removesuffix("shot"), "method": method, "family": "ddpm",
        "seed": seed.removeprefix("seed")}
print(shlex.join(evaluate_arguments(p["evaluate"], p["resolution"], info, samples=f"samples/{run}",
      train=f"data/{world}/{domain}/{shots}", reference=f"data/{world}/{domain}/reference",
      reference_stats=f"results/reference_stats/{world}/{domain}/embedded.npz",
      metric_backbone=f"models/{world}/metric_backbone", out=out, diversity=True, threads=1)))
PY
)
    start=$(date +%s.%N)
    eval PYTHONPATH="$tmp/$c/src" domainstudio evaluate "$args" > "$out/log" 2>&1
    end=$(date +%s.%N)
    printf '%s round %s: %.1f s (load %s)\n' "$c" "$round" "$(echo "$end - $start" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
