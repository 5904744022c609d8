"""tools/build_site.py: pages from executed notebooks, links between them, refusal of broken ones."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import build_site  # noqa: E402


def _series(tmp_path, error: bool = False):
    series, executed, out = tmp_path / "series", tmp_path / "executed", tmp_path / "site"
    for d in (series, executed, out):
        d.mkdir()
    index = new_notebook(cells=[new_markdown_cell("# Index\n[first](01a_first.ipynb) and [notation](notation.md)")])
    first = new_notebook(cells=[new_markdown_cell("# First\n[back](00_index.ipynb#top)"), new_code_cell("1 + 1")])
    nbformat.write(index, series / "00_index.ipynb")
    nbformat.write(first, series / "01a_first.ipynb")
    (series / "notation.md").write_text("# Notation\n\n| symbol | meaning |\n|---|---|\n| $n$ | points |\n")
    first.cells[1].outputs = [new_output("error", ename="ValueError", evalue="boom", traceback=[])] if error else [
        new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    nbformat.write(index, executed / "00_index.ipynb")
    nbformat.write(first, executed / "01a_first.ipynb")
    return series, executed, out


def test_pages_link_each_other(tmp_path):
    series, executed, out = _series(tmp_path)
    assert build_site.notebook_pages(executed, out, series) == ["00_index", "01a_first"]
    assert build_site.markdown_pages(out, series) == ["notation"]
    index = (out / "index.html").read_text()
    assert 'href="01a_first.html"' in index and 'href="notation.html"' in index
    assert 'href="00_index.html#top"' in (out / "01a_first.html").read_text()
    assert "<table>" in (out / "notation.html").read_text()


def test_a_notebook_with_an_error_output_stops_the_build(tmp_path):
    series, executed, out = _series(tmp_path, error=True)
    with pytest.raises(SystemExit, match="01a_first.ipynb: error outputs"):
        build_site.notebook_pages(executed, out, series)


def test_a_notebook_never_executed_stops_the_build(tmp_path):
    series, executed, out = _series(tmp_path)
    (executed / "01a_first.ipynb").unlink()
    with pytest.raises(SystemExit, match="no executed copy"):
        build_site.notebook_pages(executed, out, series)
