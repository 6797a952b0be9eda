#!/usr/bin/env bash
# Quick start 1: set up and ask the ensemble to improve the bundled example
# (local model servers when any run, else the embedded default models).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/codeconductor demo "$@"
