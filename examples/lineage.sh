#!/usr/bin/env bash
# Lineage from the shell: a model linked to the exact data it was trained on,
# a policy that requires approved data for production, and the answers to an
# auditor's two questions when a data version turns out to be bad.
#
#     bash examples/lineage.sh                            # a fresh local registry
#     bash examples/lineage.sh --root s3://bucket/registry   # any fsspec URL
#
# data commit -> approval -> a model trained on it (--from, --code, --run) ->
# a production commit the lineage rule rejects (exit code 1) -> the admitted
# one -> kirin lineage (upstream) -> withdraw the data -> kirin audit fails
# (exit code 1) -> kirin used-by --stage production (downstream).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root=""
if [ "${1:-}" = "--root" ] && [ -n "${2:-}" ]; then
    root="$2"
elif [ $# -gt 0 ]; then
    echo "usage: $0 [--root URL]" >&2
    exit 2
fi

if command -v kirin >/dev/null 2>&1; then
    kirin="kirin"
elif [ -x "$here/../.venv/bin/kirin" ]; then
    kirin="$here/../.venv/bin/kirin"
else
    echo "kirin is not installed: run 'pip install -e .' first" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kirin-lineage-XXXXXX")"
root="${root:-$work/registry}"
cd "$work"
echo "Registry root: $root"

step() { printf '\n== %s\n' "$*"; }

cat > model-policy.yaml <<'YAML'
version: 1
tags: {allowed: [staging, production]}
stages: [staging, production]
lineage:
  production:
    requires:
      - role: training
        dataset: churn_data
        tags: [approved]
        where: "rows >= 1000"
    code: true
YAML

step "1. The data team commits a data version and approves it"
"$kirin" init --root "$root" --dataset churn_data --description "Churn training data"
printf 'customer,churned\n1,0\n2,1\n' > train.csv
"$kirin" commit train.csv -m "Churn data, March extract" --metadata '{"rows": 120000}' \
    --root "$root" --dataset churn_data
data="$("$kirin" log --root "$root" --dataset churn_data --format json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["commits"][0]["hash"])')"
"$kirin" promote "$data" --tag approved -m "Approved by the data owners" \
    --root "$root" --dataset churn_data

step "2. The model registry requires approved training data for production"
"$kirin" init --root "$root" --dataset churn_model --policy model-policy.yaml
head -c 4096 /dev/urandom > model.pt
"$kirin" commit model.pt -m "Retrain on the March extract" --tag staging \
    --from training=churn_data@approved --code 9d1e4c2 --run run-5521 \
    --root "$root" --dataset churn_model

step "3. A production model without its training data is refused"
set +e
"$kirin" commit model.pt -m "Hotfix model" --tag production \
    --root "$root" --dataset churn_model
code=$?
set -e
[ "$code" -eq 1 ] && echo "Rejected as expected (exit code 1)"

step "4. The production model, linked to the approved data"
"$kirin" promote staging --tag production --root "$root" --dataset churn_model

step "5. Show me the data behind this model"
"$kirin" lineage production --root "$root" --dataset churn_model

step "6. The data turns out to be bad: withdraw its approval"
"$kirin" withdraw approved -m "Withdrawn: label leakage in the March extract" \
    --root "$root" --dataset churn_data

step "7. The audit now fails every model trained on it"
set +e
"$kirin" audit --root "$root" --dataset churn_model
code=$?
set -e
[ "$code" -eq 1 ] && echo "Audit failed as expected (exit code 1)"

step "8. Which production models used this data version?"
"$kirin" used-by "churn_data@$data" --stage production --root "$root"

echo "Example finished OK (work folder: $work)"
