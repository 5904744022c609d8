"""Downloaded datasets: checksummed, used offline from a verified local copy."""

import shutil
from pathlib import Path

import numpy as np
import pooch
import pytest
from bayeskit.data import load_flint

SHARED_FLINT = Path(__file__).resolve().parents[2] / "shared" / "data" / "flint"
needs_flint = pytest.mark.skipif(not (SHARED_FLINT / "x.csv").exists(), reason=f"no local copy at {SHARED_FLINT}")


@needs_flint
def test_flint_loads_offline_from_a_verified_folder(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a verified local copy must not be downloaded again")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    d = load_flint(SHARED_FLINT)
    assert d.X.shape == (7792, 10) and d.y.shape == (7792, 2)
    assert np.all(np.isfinite(d.X)) and np.all(np.isfinite(d.y))


@needs_flint
def test_flint_download_path_checks_the_checksum(tmp_path, monkeypatch):
    """Simulate the server with the local copy: a good file passes, a corrupted one is refused."""
    served = {"corrupt": False}

    def fake_download(self, url, output_file, pooch_obj, check_only=False):
        name = url.rsplit("/", 1)[1]
        data = (SHARED_FLINT / name).read_bytes()
        if served["corrupt"]:
            data = data[:-10] + b"0000000000"
        Path(output_file if isinstance(output_file, (str, Path)) else output_file.name).write_bytes(data)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fake_download)
    monkeypatch.setenv("BAYESKIT_DATA_DIR", str(tmp_path))
    d = load_flint()
    assert d.X.shape == (7792, 10)
    assert (tmp_path / "flint" / "x.csv").is_file()

    served["corrupt"] = True
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "flint", bad)
    (bad / "z.csv").write_text("tampered")
    with pytest.raises(ValueError, match="(?i)hash"):
        load_flint(bad)
