#!/bin/sh
# compile_time.sh -- how long our compiler takes for a program vs clang (+ bpftool's static
# linker, the step libbpf-based C toolchains add), measured with public tools on this machine.
#
# In:  a Whistler source and its C twin (default: the seed's dispatcher and bench/c twin).
# Out: timings printed by hyperfine when installed, else by /usr/bin/time over N runs.
#      Nothing is recorded: run it and read the numbers (docs/benchmarks.md says how).
#
#   bench/compile_time.sh [WHISTLER.lisp C.c] [RUNS]
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
lisp=${1:-examples/tail-call-dispatch.lisp}
csrc=${2:-bench/c/tail_call_dispatch.c}
runs=${3:-10}
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/whistler-time.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cd "$repo"
ours="$python -m compiler compile $lisp -o $work/ours.bpf.o"
clang="clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c $csrc -o $work/clang.o"
clang_link="$clang && bpftool gen object $work/linked.o $work/clang.o"

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 2 --runs "$runs" \
        -n whistler "$ours" -n clang "$clang" -n "clang + bpftool gen object" "$clang_link"
    exit 0
fi

# Fallback: /usr/bin/time (GNU time) around a loop of $runs runs; divide by $runs per compile.
for pair in "whistler|$ours" "clang|$clang" "clang + bpftool gen object|$clang_link"; do
    name=${pair%%|*}
    cmd=${pair#*|}
    sh -c "$cmd" >/dev/null  # warm-up, and fail early if the command is broken
    printf '%s, %s runs: ' "$name" "$runs"
    /usr/bin/time -f '%e s elapsed, %U s user, %S s sys, max RSS %M KiB' \
        sh -c "i=0; while [ \$i -lt $runs ]; do $cmd >/dev/null || exit 1; i=\$((i+1)); done"
done
