import json
import os
import subprocess

import pytest

from infra.engines import sha256_of, verify
from infra.tansu import TANSU_SHA256, tansu_binary

pytestmark = pytest.mark.fast


def test_verify_rejects_a_tampered_file(tmp_path):
    f = tmp_path / "engine"
    f.write_bytes(b"not the engine")
    with pytest.raises(RuntimeError, match="expected"):
        verify(f, TANSU_SHA256)


def test_tansu_binary_is_pinned_and_runs():
    path = tansu_binary()
    assert sha256_of(path) == TANSU_SHA256 and os.access(path, os.X_OK)
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10)
    assert "0.6.0" in out.stdout


def test_the_ip_location_database_is_pinned():
    from infra.geo import FILES, fetch_geo_database

    folder = fetch_geo_database()  # fetched by `make setup`: verified again here
    assert {name: sha256_of(folder / name) for name in FILES} == FILES
    assert "Creative Commons Attribution 4.0" in (folder / "DBIP-LICENSE").read_text()


def test_the_map_data_is_pinned():
    from infra.mapdata import ISO_COUNTRIES, WORLD_ATLAS, fetch_map_data

    folder = fetch_map_data()  # fetched by `make setup`: verified again here
    for package in (WORLD_ATLAS, ISO_COUNTRIES):
        assert {name: sha256_of(folder / name) for name in package.files} == {
            name: sha for name, (_member, sha) in package.files.items()
        }
    topology = json.loads((folder / "countries-110m.json").read_text())
    assert len(topology["objects"]["countries"]["geometries"]) == 177
    codes = {alpha2: numeric for alpha2, _alpha3, numeric, *_ in json.loads((folder / "codes.json").read_text())}
    assert codes["US"] == "840" and codes["DE"] == "276"
