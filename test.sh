#!/usr/bin/env bash
# Quick start 2: set up everything the tests need, then run the whole suite:
# ruff, mypy --strict, pytest (unit, integration on real llama.cpp servers, LSP end-to-end, Neovim, VS Code via
# code-server) and the extension's own unit tests.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --dev
. .venv/bin/activate
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy (strict: ensemble, server, cli; checks tests, bench)"; mypy
if [[ -f vscode-extension/package.json ]]; then
  echo "== extension: build + unit tests"; (cd vscode-extension && npm run --silent compile && npm test --silent)
fi
echo "== pytest"
exec python -m pytest -q -p no:cacheprovider "$@"
