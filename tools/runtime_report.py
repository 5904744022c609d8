"""Measure each notebook's runtime and peak memory, and compare it with the runtime it states.

Every notebook's header has a line like ``Runtime: about 30 s on a 2-core CPU (full mode), 25 s in
fast mode``. This script executes the notebooks one after another, each in a fresh kernel, in full
mode (``BAYESKIT_FAST=0``, what learners run) or fast mode (``--mode fast``, what CI runs), and
reports wall time, peak resident memory of the kernel and whether the stated runtime held.

    python tools/runtime_report.py                      # full mode, every notebook, this environment
    python tools/runtime_report.py --mode fast 01a 03b  # fast mode, notebooks whose names start so
    python tools/runtime_report.py --binder --mode fast # build binder/ from scratch and run the series there
    python tools/runtime_report.py --write-index        # copy the stated runtimes into the index's table

``--binder`` builds the environment Binder would (``tools/binder_env.py``: the runtime.txt Python,
the pinned requirements, the wheel from postBuild) in a temporary folder and executes the
series in it, checking each kernel stays within Binder's 2 GB.

Writes ``test-artifacts/runtime-report/runtime-report-<mode>.json`` and ``.md`` (``--out`` to
change) and the executed notebooks beside them. Exit status: 0 when every notebook ran and
stayed within ``--tolerance`` times its stated runtime (and 2 GB with ``--binder``), 1 when one
failed to execute, 2 when one ran over.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import binder_env  # noqa: E402

ROOT = binder_env.ROOT
BINDER_MEMORY_BYTES = 2 * 1024**3

_SECONDS = r"(\d+(?:\.\d+)?)\s*(s|min)\b"


def _seconds(value: str, unit: str) -> float:
    return float(value) * (60.0 if unit == "min" else 1.0)


def stated_runtimes(notebook: Path) -> dict[str, float | None]:
    """``{"full": seconds, "fast": seconds}`` from the notebook's Runtime line (None where absent)."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells[:4]:
        for line in cell.source.splitlines():
            if "untime" not in line:
                continue
            full = re.search(_SECONDS + r"[^,;]*?(?:on a 2-core CPU|full mode)", line)
            fast = re.search(_SECONDS + r"\s*in fast mode", line)
            return {
                "full": _seconds(*full.groups()) if full else None,
                "fast": _seconds(*fast.groups()) if fast else None,
            }
    return {"full": None, "fast": None}


def write_index_table(index: Path = ROOT / "notebooks" / "00_index.ipynb") -> None:
    """Rewrite the Runtimes table of the index from each notebook's stated runtimes."""
    nb = nbformat.read(index, as_version=4)
    rows = ["| notebook | full mode (2-core CPU) | fast mode |", "|---|---|---|"]
    full = fast = 0.0
    for path in sorted(index.parent.glob("0[1-9]*.ipynb")):
        stated = stated_runtimes(path)
        full, fast = full + (stated["full"] or 0), fast + (stated["fast"] or 0)
        rows.append(f"| [{path.stem[:3]}]({path.name}) | about {int(stated['full'])} s | {int(stated['fast'])} s |")
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Runtimes"))
    head = cell.source.split("| notebook |")[0]
    head = re.sub(r"about \d+ minutes in full mode and \d+ in fast mode",
                  f"about {round(full / 60)} minutes in full mode and {round(fast / 60)} in fast mode", head)
    cell.source = head + "\n".join(rows) + "\n"
    nbformat.write(nb, index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--mode", choices=("full", "fast"), default="full")
    parser.add_argument("--binder", action="store_true", help="run in a fresh environment built from binder/")
    parser.add_argument("--tolerance", type=float, default=1.25,
                        help="a notebook is over when it takes longer than this times its stated runtime")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per notebook")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "runtime-report")
    parser.add_argument("--write-index", action="store_true",
                        help="only rewrite the Runtimes table of notebooks/00_index.ipynb from the notebooks' headers")
    args = parser.parse_args(argv)
    if args.write_index:
        write_index_table()
        return 0

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [p for p in notebooks if any(p.stem.startswith(n) for n in args.names)]
    if not notebooks:
        parser.error(f"no notebook matches {args.names}")
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BAYESKIT_FAST": "1" if args.mode == "fast" else "0"}
    py, cwd = Path(sys.executable), ROOT
    if args.binder:
        print("building the Binder environment (a few minutes) ...", file=sys.stderr, flush=True)
        py, cwd, benv = binder_env.build(Path(tempfile.mkdtemp(prefix="bayeskit-binder-")))
        env = {**benv, "BAYESKIT_FAST": env["BAYESKIT_FAST"]}
        # the copy has no ../../shared beside it: point 03c at the verified local Flint data, as
        # the checkout's own run finds it (a real Binder downloads it)
        flint = ROOT.parent / "shared" / "data" / "flint"
        if (flint / "x.csv").exists() and "BAYESKIT_DATA_DIR" not in env:
            env["BAYESKIT_DATA_DIR"] = str(flint)

    rows, status = [], 0
    for nb in notebooks:
        stated = stated_runtimes(nb)[args.mode]
        print(f"{nb.stem} ({args.mode} mode, stated {stated} s) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out, peak = binder_env.execute_notebook(py, cwd / "notebooks" / nb.name, args.out, cwd=cwd, env=env,
                                                timeout=args.timeout)
        seconds = time.perf_counter() - t0
        ok = out.returncode == 0
        within = stated is not None and seconds <= args.tolerance * stated
        memory_ok = not args.binder or (peak is not None and peak < BINDER_MEMORY_BYTES)
        if not ok:
            status = 1
            print(out.stderr[-3000:], file=sys.stderr)
        elif (not within or not memory_ok) and status == 0:
            status = 2
        print(f"  {'ran' if ok else 'FAILED'} in {seconds:.1f} s (stated {stated} s), peak "
              f"{None if peak is None else round(peak / 2**20)} MB", file=sys.stderr, flush=True)
        rows.append({"notebook": nb.stem, "executed": ok, "seconds": round(seconds, 1), "stated_seconds": stated,
                     "within_stated": within, "peak_memory_mb": None if peak is None else round(peak / 2**20),
                     "within_binder_memory": memory_ok if args.binder else None})

    report = {"mode": args.mode, "binder": args.binder, "tolerance": args.tolerance, "python": str(py),
              "cpu_count": os.cpu_count(), "loadavg": os.getloadavg(), "notebooks": rows}
    stem = f"runtime-report-{args.mode}" + ("-binder" if args.binder else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Notebook runtimes ({args.mode} mode{', Binder environment' if args.binder else ''})", "",
             f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f}; "
             f"'over' means more than {args.tolerance} x the stated runtime.", "",
             "| notebook | executed | measured | stated | within | peak memory |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['notebook']} | {'yes' if r['executed'] else 'FAILED'} | {r['seconds']} s | "
                     f"{r['stated_seconds']} s | {'yes' if r['within_stated'] else 'over'} | {r['peak_memory_mb']} MB |")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
