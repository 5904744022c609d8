"""Every colour an explorer draws with is an Okabe-Ito colour (bayeskit.plot's palette, safe for
the common colour-vision deficiencies) or a grey; a hue from another palette fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bayeskit.plot import PALETTE, PRIOR

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"
SOURCES = sorted(p for p in WIDGETS.iterdir() if p.suffix in (".js", ".py", ".css"))
ALLOWED = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (*PALETTE, PRIOR)}

_HEX = re.compile(r"#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})\b")
_RGB = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")


def _colours(text: str):
    for m in _HEX.finditer(text):
        h = m.group(1)
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        yield m.group(0), tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    for m in _RGB.finditer(text):
        yield m.group(0), tuple(int(v) for v in m.groups())


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_explorer_colours_are_okabe_ito_or_grey(path):
    bad = sorted({text for text, rgb in _colours(path.read_text())
                  if rgb not in ALLOWED and not (rgb[0] == rgb[1] == rgb[2])})
    assert not bad, f"{path.name} draws with colours outside the Okabe-Ito palette: {bad}"


def test_the_check_can_fail():
    assert [rgb for _, rgb in _colours("ctx.fillStyle = '#ff7f0e'")] == [(255, 127, 14)]
    assert (255, 127, 14) not in ALLOWED
