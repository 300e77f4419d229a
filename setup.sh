#!/usr/bin/env bash
# One-time setup on a fresh Debian machine with Python 3.11 (as root, or with the data already installed):
# Debian's complete Fashion-MNIST for the offline quick run, then a virtual environment .venv with the core
# package (src/specrobust), PyTorch, Snakemake and the test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/pip install -q -e ".[torch,workflow,test]"
echo "setup done: $(.venv/bin/python -c 'import torch, snakemake; print("torch", torch.__version__, "snakemake", snakemake.__version__)')"
