#!/usr/bin/env python3
"""Trims fuzz/corpus/<target>/ to at most CAP files (default 200), after `cargo fuzz cmin`.

cmin keeps every input that adds coverage, which for serde-heavy targets is several hundred
files. This keeps the CAP inputs that cover the most edges, chosen greedily (most new edges
first, the smaller file on a tie), and deletes the rest. Per-input coverage comes from a
libFuzzer merge control file, so the target must be built (`cargo fuzz build`).

Usage (from fuzz/): python3 trim_corpus.py TARGET [CAP]
"""

import os
import subprocess
import sys
import tempfile

TRIPLE = "x86_64-unknown-linux-gnu"


def coverage(binary, corpus):
    """Per-file edge sets from a merge control file (-use_counters=0: edges, not counts)."""
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run(
            [binary, "-merge=1", "-use_counters=0", f"-merge_control_file={control}", out, corpus],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        lines = open(control).read().splitlines()
    count = int(lines[0])
    files = lines[2 : 2 + count]
    edges = {}
    for line in lines[2 + count :]:
        parts = line.split()
        if parts[0] == "COV":
            edges[files[int(parts[1])]] = set(map(int, parts[2:]))
    return files, edges


def main():
    target = sys.argv[1]
    cap = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    corpus = os.path.join("corpus", target)
    binary = os.path.join("target", TRIPLE, "release", target)
    files, edges = coverage(binary, corpus)
    total = set().union(*edges.values()) if edges else set()
    covered, kept = set(), []
    left = dict(edges)
    while left and len(kept) < cap:
        path, cov = max(left.items(), key=lambda kv: (len(kv[1] - covered), -os.path.getsize(kv[0])))
        if not cov - covered:
            break
        covered |= cov
        kept.append(path)
        del left[path]
    for path in files:
        if path not in kept:
            os.remove(path)
    share = 100 * len(covered) / len(total) if total else 100
    print(f"{target}: kept {len(kept)} of {len(files)} files, {len(covered)} of {len(total)} edges ({share:.1f}%)")


if __name__ == "__main__":
    main()
