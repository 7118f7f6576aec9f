"""Who the client is behind a proxy: X-Forwarded-For, believed only from the proxies you trust."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


class TrustedProxies:
    """Believe X-Forwarded-For only from configured proxies, and then take the right-most
    address that isn't itself a trusted proxy (the left part is client-controlled)."""

    def __init__(self, specs: list[str]):
        self.networks = [ipaddress.ip_network(s, strict=False) for s in specs]
        self.is_trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        if not self.networks or not forwarded_for or not self.is_trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            if hop and not self.is_trusted(hop):
                return hop
        return peer
