#!/usr/bin/env bash
# Make the offline data kgnet uses available: WordNet 3.0 (for exporting ontologies) and
# Fashion-MNIST (the embedded default dataset). As root on Debian/Ubuntu they come from the
# distribution's packages; anyone else is told the online alternatives.
set -euo pipefail

WORDNET_DIR=/usr/share/wordnet
FMNIST_DIR=/usr/share/datasets/fashion-mnist
missing=()
[[ -f $WORDNET_DIR/data.noun ]] || missing+=(wordnet-base)
[[ -f $WORDNET_DIR/index.sense ]] || missing+=(wordnet-sense-index)
[[ -f $FMNIST_DIR/train-images-idx3-ubyte.gz ]] || missing+=(dataset-fashion-mnist)

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "data: WordNet 3.0 and Fashion-MNIST are installed"
    exit 0
fi

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "data: installing Debian packages ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    echo "data: installed ${missing[*]}"
    exit 0
fi

cat >&2 <<MSG
data: missing ${missing[*]} and not root on Debian, so nothing was installed. Either
  sudo apt-get install ${missing[*]}
or get them online:
  WordNet 3.0:   $(dirname "$0")/../.venv/bin/python -m nltk.downloader wordnet
  Fashion-MNIST: $(dirname "$0")/../.venv/bin/python -c "from torchvision.datasets import FashionMNIST; FashionMNIST('data', download=True)"
MSG
