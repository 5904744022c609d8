"""Build the static site of the executed series: one HTML page per notebook, the notation page
and the API reference, from the notebooks the test suite already executed (no second run).

    python tools/build_site.py                         # from test-artifacts/notebooks to test-artifacts/site
    python tools/build_site.py --executed DIR --out DIR
    python tools/build_site.py --no-api                # skip the API reference (pdoc)

``make test`` runs every notebook once in fast mode (``tests/test_notebooks.py`` writes the
executed copies to ``test-artifacts/notebooks/``) and then this script, so CI keeps the site as
an artifact. Each page is nbconvert's JupyterLab template; links between notebooks point at the
pages; the explorers' widget state, which the executing client stored in each notebook, is
embedded, so ipywidgets controls render on the static page (the live canvases need a kernel and
show their last state only where the front end can draw them). The API reference is generated
by pdoc from the docstrings. The build fails when a notebook of the series has no executed copy
or contains an error output, so a broken notebook cannot hide behind a stale page.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SERIES = ROOT / "notebooks"

_LINK = re.compile(r'href="([^":#?]+)\.(ipynb|md)(#[^"]*)?"')
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script>window.MathJax = {{tex: {{inlineMath: [["$", "$"]]}}}};</script>
<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
<style>body {{max-width: 60rem; margin: 2rem auto; padding: 0 1rem; font-family: system-ui, sans-serif;
line-height: 1.5}} table {{border-collapse: collapse}} td, th {{border: 1px solid #ccc; padding: .2rem .5rem}}
nav {{margin-bottom: 1.5rem}}</style></head>
<body><nav><a href="index.html">Series index</a> · <a href="notation.html">Notation</a> ·
<a href="api/bayeskit.html">API reference</a></nav>
{body}
</body></html>
"""


def _relink(text: str) -> str:
    """Links to notebooks and Markdown pages of the series point at their HTML pages."""
    return _LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(3) or ""}"', text)


def _errors(nb) -> list[str]:
    return [
        f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
        for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]


def notebook_pages(executed: Path, out: Path, series: Path = SERIES) -> list[str]:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = False
    problems, written = [], []
    for source in sorted(series.glob("*.ipynb")):
        run = executed / source.name
        if not run.exists():
            problems.append(f"{source.name}: no executed copy in {executed} (run `make test` first)")
            continue
        nb = nbformat.read(run, as_version=4)
        if errs := _errors(nb):
            problems.append(f"{source.name}: error outputs: {errs}")
            continue
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
        (out / f"{source.stem}.html").write_text(_relink(body))
        written.append(source.stem)
    if problems:
        raise SystemExit("site not built:\n  " + "\n  ".join(problems))
    shutil.copy(out / "00_index.html", out / "index.html")
    return written


def markdown_pages(out: Path, series: Path = SERIES) -> list[str]:
    from nbconvert.filters.markdown import markdown2html

    written = []
    for page in sorted(series.glob("*.md")):
        text = page.read_text()
        title = next((line.lstrip("# ") for line in text.splitlines() if line.startswith("#")), page.stem)
        body = _relink(markdown2html(text))
        (out / f"{page.stem}.html").write_text(_PAGE.format(title=html.escape(title), body=body))
        written.append(page.stem)
    return written


def api_reference(out: Path) -> None:
    """pdoc's HTML for bayeskit and its subpackages (the widgets included) under ``out/api``."""
    cmd = [sys.executable, "-m", "pdoc", "--docformat", "numpy", "--math", "-o", str(out / "api"),
           "bayeskit", "bayeskit.data", "bayeskit.widgets", "!bayeskit.data._download"]
    subprocess.run(cmd, check=True, cwd=ROOT)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executed", type=Path, default=ROOT / "test-artifacts" / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "site")
    parser.add_argument("--no-api", action="store_true", help="skip the API reference")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    pages = notebook_pages(args.executed, args.out)
    pages += markdown_pages(args.out)
    if not args.no_api:
        api_reference(args.out)
    print(f"site: {len(pages)} pages{'' if args.no_api else ' + API reference'} in {args.out}/index.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
