#!/usr/bin/env bash
# Static checks of terraform/ and deploy/k8s/. Terraform cannot download providers in CI, so
# nothing here needs them:
#   1. every .tf file parses (python-hcl2), the module layout, typed and described variables,
#      justified checkov skips, and the config drift test (pytest, in .venv);
#   2. `terraform fmt -check` when a terraform binary is on PATH (formatting needs no provider);
#   3. checkov over terraform/ (from its own venv, .venv-checkov, created once from
#      requirements/checkov.txt): any failed check fails the script; skips must be justified
#      in place with `#checkov:skip=CKV_...:reason` (see terraform/README.md);
#   4. checkov over the Kubernetes manifests of deploy/k8s (the nightly CronJob);
#   5. `kubectl kustomize deploy/k8s` when kubectl is on PATH (renders offline).
# Safe to run again: the checkov venv is only rebuilt when requirements/checkov.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-checkov
STAMP=$VENV/.requirements.sha256

if [ ! -x .venv/bin/python ]; then
  echo "check-terraform: .venv is missing; run ./scripts/setup.sh first" >&2
  exit 6
fi

echo "== Terraform: parse, layout and config drift (pytest)"
.venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/test_terraform_parse.py tests/test_terraform_config_drift.py \
  tests/test_terraform_config_from_output.py tests/test_terraform_k8s_manifests.py \
  tests/test_terraform_database_auth.py

if command -v terraform >/dev/null 2>&1; then
  echo "== Terraform: terraform fmt -check"
  if ! terraform fmt -check -recursive -diff terraform 2>/dev/null; then
    echo "check-terraform: run \`terraform fmt -recursive terraform\` and commit the result" >&2
    exit 1
  fi
else
  echo "== Terraform: terraform not on PATH, formatting check skipped"
fi

want=$(sha256sum requirements/checkov.txt | cut -d' ' -f1)
if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "check-terraform: creating $VENV from requirements/checkov.txt (once)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
  echo "$want" > "$STAMP"
fi

echo "== Terraform: checkov"
# --skip-download: no call to the Prisma Cloud API (CI has no network but package registries).
"$VENV/bin/checkov" --directory terraform --framework terraform --quiet --compact \
  --skip-download

echo "== Kubernetes: checkov"
# Skips are annotations on the resource: checkov.io/skipN: CKV_K8S_...=reason.
"$VENV/bin/checkov" --directory deploy/k8s --framework kubernetes --quiet --compact \
  --skip-download

if command -v kubectl >/dev/null 2>&1; then
  echo "== Kubernetes: kubectl kustomize deploy/k8s"
  kubectl kustomize deploy/k8s >/dev/null
else
  echo "== Kubernetes: kubectl not on PATH, kustomize render skipped"
fi
echo "check-terraform: all static checks passed"
