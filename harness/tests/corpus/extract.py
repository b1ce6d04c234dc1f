#!/usr/bin/env python3
"""Copy each case's console window out of a results directory into the
corpus: RUN_DIR KERNEL CAPTURE [CASE...]. The window runs from the runner's
`fh: case ID start` marker to its `done` marker, or to the end of the log
when the case took the VM down."""
import json
import os
import sys

run, kernel, capture, *only = sys.argv[1:]
summary = json.load(open(os.path.join(run, "summary.json")))
out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), kernel)
os.makedirs(out_dir, exist_ok=True)
for case in summary["cases"]:
    cid, boot = case["id"], case.get("boot")
    if boot is None or (only and cid not in only):
        continue
    with open(os.path.join(run, "boots", str(boot), "console.log"), "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.rstrip().endswith(f"fh: case {cid} start"))
    end = next((i for i in range(start, len(lines))
                if lines[i].rstrip().endswith(f"fh: case {cid} done")), len(lines) - 1)
    name = os.path.join(out_dir, f"{cid.replace('/', '-')}.{capture}.log")
    with open(name, "w") as f:
        f.write("".join(lines[start:end + 1]))
    print(name, end - start + 1, "lines")
