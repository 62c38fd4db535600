#!/usr/bin/env bash
# The model-versioning workflow of the user guide, driven entirely from the shell.
#
#     bash examples/model_versioning.sh                          # a fresh local registry
#     bash examples/model_versioning.sh --root s3://bucket/models   # any fsspec URL
#
# init (with the team policy) -> commit baseline, improved and experimental
# models -> promote to staging -> a promotion the policy rejects (exit code 1)
# -> the accepted release -> log --where -> diff -> get the baseline back.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root=""
if [ "${1:-}" = "--root" ] && [ -n "${2:-}" ]; then
    root="$2"
elif [ $# -gt 0 ]; then
    echo "usage: $0 [--root URL]" >&2
    exit 2
fi

# Use the kirin on PATH, else the one in this repository's virtualenv.
if command -v kirin >/dev/null 2>&1; then
    kirin="kirin"
elif [ -x "$here/../.venv/bin/kirin" ]; then
    kirin="$here/../.venv/bin/kirin"
else
    echo "kirin is not installed: run 'pip install -e .' first" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kirin-example-XXXXXX")"
root="${root:-$work/registry}"
cd "$work"
echo "Registry root: $root"

step() { printf '\n== %s\n' "$*"; }

# Stand-in for training: write a 'weights' file.
train() { head -c "${2:-4096}" /dev/urandom > "$1"; }

step "1. Create the registry with the team's policy (and a kirin.yaml, so no more flags)"
"$kirin" init --root "$root" --dataset sentiment_classifier --write-config \
    --policy "$here/policy/team-policy.yaml" \
    --description "Sentiment classifier for customer reviews"

step "2. Save the first model"
train model_weights.pt
echo '{"hidden": 128, "layers": 2}' > config.json
cat > baseline.json <<'JSON'
{"framework": "pytorch", "accuracy": 0.87, "f1_score": 0.85,
 "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32},
 "training_data": "sentiment_v1", "model_size_mb": 0.5}
JSON
"$kirin" commit model_weights.pt config.json \
    -m "Initial baseline model - BERT fine-tuned on customer reviews" \
    --metadata @baseline.json --tag baseline --tag v1.0

step "3. Save an improved model"
train model_weights_v2.pt
"$kirin" commit model_weights_v2.pt \
    -m "Improved model v2.0 - Added regularization and more training data" \
    --metadata '{"framework": "pytorch", "accuracy": 0.92, "f1_score": 0.90,
                 "hyperparameters": {"learning_rate": 0.0005, "epochs": 15, "batch_size": 32,
                                     "weight_decay": 0.01},
                 "training_data": "sentiment_v2",
                 "improvements": ["Better regularization", "More epochs"]}' \
    --tag improved --tag v2.0

step "4. An experimental model, promoted from dev to staging (the same files)"
train model.pt
"$kirin" commit model.pt -m "Experimental model with new architecture" \
    --metadata '{"accuracy": 0.93, "f1_score": 0.91, "framework": "pytorch"}' \
    --tag dev --tag experimental
"$kirin" promote dev --tag staging --tag v2.1-beta -m "Promote experimental model to staging"

step "5. Promoting v2.0 straight to production: the policy says no (exit code 1)"
set +e
"$kirin" promote v2.0 --tag production --tag v2.0.1 -m "Release v2.0 to production"
status=$?
set -e
if [ "$status" -ne 1 ]; then
    echo "expected the promotion to be rejected with exit code 1, got $status" >&2
    exit 1
fi
echo "Rejected as expected (exit code $status): nothing was written."

step "6. The staged model, validated, is released to production"
"$kirin" promote staging --tag production --tag v2.1 -m "Release v2.1 to production" \
    --metadata '{"validated": true}' --dry-run
"$kirin" promote staging --tag production --tag v2.1 -m "Release v2.1 to production" \
    --metadata '{"validated": true}'

step "7. History, and models found by tags and metrics"
"$kirin" log
echo "Production models:"
"$kirin" log --tag production
echo "Models with accuracy > 0.9 and f1 > 0.85:"
"$kirin" log --where "accuracy > 0.9 and f1_score > 0.85"

step "8. Compare baseline and improved (tags or hash prefixes work alike)"
"$kirin" diff v1.0 v2.0

step "9. Get the baseline back and check it is the very file committed"
"$kirin" get v1.0 -o baseline
cmp baseline/model_weights.pt model_weights.pt
echo "baseline/model_weights.pt is byte-identical to the committed file."

step "10. Everything stored is intact"
"$kirin" verify
"$kirin" catalog list

echo
echo "Example finished OK (work folder: $work)"
