"""Cookieless visitor identity and IP truncation.

visitor_id = keyed BLAKE2b(daily salt, site, full IP, UA). The salt rotates daily and old salts
are destroyed, so an id can't be linked across days and the full IP is never stored anywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress


def truncate_ip(ip: str) -> str:
    """IPv4 -> /24, IPv6 -> /48 (the network, never the host). Unparseable -> ''."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


def visitor_id(salt: bytes, site: str, ip: str, ua: str) -> str:
    """16 hex chars (64 bits): collisions are negligible per site and day, and it stays short."""
    h = hashlib.blake2b(key=salt[:64], digest_size=8)
    # NUL separators: no field can contain one after the collector's cleaning, so the
    # concatenation is unambiguous.
    h.update(site.encode("utf-8", "replace"))
    h.update(b"\0")
    h.update(ip.encode("ascii", "replace"))
    h.update(b"\0")
    h.update(ua.encode("utf-8", "replace"))
    return h.hexdigest()
