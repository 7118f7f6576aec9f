"""The dashboard's world map, offline: Natural Earth's countries as TopoJSON (npm ``world-atlas``,
ISC) and ISO 3166-1 codes and English names (npm ``i18n-iso-countries``, MIT), pinned by version
and sha256, fetched at setup into ``<engines>/map/``; the dashboard serves them from there.
`python -m infra.mapdata` fetches them.
"""

from __future__ import annotations

from pathlib import Path

from infra.engines import NpmFiles, engines_dir, fetch_npm_files

WORLD_ATLAS = NpmFiles(
    "world-atlas@2.0.2",
    "world-atlas/-/world-atlas-2.0.2.tgz",
    "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97",
    {
        "countries-110m.json": (
            "countries-110m.json",
            "2516c915867c7baf18ddec727aec46c315541a07cfb3d79a6559b05d5e94eee8",
        ),
        "WORLD-ATLAS-LICENSE": ("LICENSE", "8048290dfdb6e83fbed17e8985c8cfc4ce9da9b842642f3d3e497280790cfa31"),
    },
)
ISO_COUNTRIES = NpmFiles(
    "i18n-iso-countries@7.14.0",
    "i18n-iso-countries/-/i18n-iso-countries-7.14.0.tgz",
    "bb418ebfb965789fcfbcce7dee59888d901ef64b03601da78b2e224cd6f5825c",
    {
        "codes.json": ("codes.json", "736d7666e943e0bca25c518e3903e2b328ce54b94662553a6472c379dbfb50aa"),
        "names-en.json": ("langs/en.json", "7445185d6424e574027a7cd14029e000784eaa03a2b83ab097742079f701e702"),
        "ISO-COUNTRIES-LICENSE": ("LICENSE", "9b3bd707c23dd2bdc57df2a4b42f402dc5d6c6f54e527608eeef24bbb161ac1b"),
    },
)
# What the dashboard may serve from the folder.
SERVED = ("countries-110m.json", "codes.json", "names-en.json")


def map_dir() -> Path:
    return engines_dir() / "map"


def fetch_map_data(dest: Path | None = None) -> Path:
    """The verified map files' folder, fetching them from the npm registry the first time."""
    return fetch_npm_files(dest or map_dir(), WORLD_ATLAS, ISO_COUNTRIES)


if __name__ == "__main__":
    print(fetch_map_data())
