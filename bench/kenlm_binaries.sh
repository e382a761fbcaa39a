#!/usr/bin/env bash
# Build KenLM's lmplz, query and build_binary (from the kenlm sdist on PyPI) into the bench cache,
# so the benchmarks can run them beside lmtool. Needs cmake, g++ and Boost (Debian: apt-get install
# cmake libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev).
set -euo pipefail
cache="${LMTOOL_BENCH_CACHE:-$HOME/.cache/lmtool-bench}"
[ -x "$cache/kenlm/build/bin/lmplz" ] && exit 0
python="${PYTHON:-python3}"
mkdir -p "$cache/sdist"
"$python" -m pip download --no-deps --no-binary kenlm kenlm -d "$cache/sdist" -q
rm -rf "$cache/kenlm" && mkdir -p "$cache/kenlm"
tar xzf "$cache"/sdist/kenlm-*.tar.gz -C "$cache/kenlm" --strip-components=1
cmake -S "$cache/kenlm" -B "$cache/kenlm/build" -DCMAKE_BUILD_TYPE=Release > /dev/null
make -C "$cache/kenlm/build" -j2 lmplz query build_binary > /dev/null
echo "KenLM programs in $cache/kenlm/build/bin"
