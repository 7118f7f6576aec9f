"""User agent -> browser, OS, device class; and the bot verdict. Pure and cached per UA.

Real traffic repeats: the top 100 UAs are ~85% of hits, so every answer is cached per distinct
UA string (a miss costs ~15 us in ua-parser's Rust resolver, ~50 us in is-bot's patterns).
A day still has ~15k distinct UAs, and every batch run and Python worker starts with an empty
cache, so the misses are what a nightly run pays (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import NamedTuple

import regex as regex_module
from is_bot import Bots
from ua_parser import Parser, load_lazy_builtins, regex

_parser = Parser(regex.Resolver(load_lazy_builtins()))


def bot_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """is-bot's verdict (does any of its patterns match, case-insensitively?), 5x faster than
    is-bot's own matcher, one `regex` alternation of every pattern with IGNORECASE: 253 -> 48 us
    per UA on a day's 14,430 distinct UAs, the same verdict on each (tests/events/test_enrich.py).

    The patterns are lower-case ASCII, so for an ASCII UA (nearly every one) matching its
    lower-cased text case-sensitively is the same test, and the stdlib's re can then use its
    literal-prefix search; patterns anchored at the start (``^``, no ``|``) are only tried
    there (match). The few patterns re can't compile (variable-width look-behind) go to `regex`.
    Any other UA gets is-bot's own matcher (compiled on first use: such UAs are rare)."""
    patterns = sorted(patterns)
    if not all(p.isascii() and p == p.lower() for p in patterns):
        raise ValueError("bot patterns must be lower-case ASCII to be matched on lower-cased UAs")
    plain, special = [], []
    for pattern in patterns:
        try:
            re.compile(pattern)
            plain.append(pattern)
        except re.error:
            special.append(pattern)

    anchored = [p for p in plain if p.startswith("^") and "|" not in p]
    at_start = _any_of(anchored, re, at_start=True)
    anywhere = _any_of([p for p in plain if p not in anchored], re)
    needs_regex = _any_of(special, regex_module)
    is_bots_own = Bots(patterns).is_bot

    def is_bot(ua: str) -> bool:
        if not ua.isascii():
            return is_bots_own(ua)
        text = ua.lower()
        return bool(at_start(text) or anywhere(text) or needs_regex(text))

    return is_bot


def _any_of(patterns, module=re, at_start: bool = False, flags: int = 0) -> Callable[[str], object]:
    """One alternation of the patterns: its match (``at_start``) or search; None for no patterns."""
    if not patterns:
        return lambda _text: None
    compiled = module.compile("|".join(f"(?:{p})" for p in patterns), flags)
    return compiled.match if at_start else compiled.search


_is_listed_bot = bot_matcher(Bots().patterns)


class _Caseless:
    """A lower-case pattern searched case-insensitively: in an ASCII UA's lower-cased text
    without IGNORECASE (re can then use its literal-prefix search, ~8x faster for the three
    below), else with it."""

    def __init__(self, pattern: str) -> None:
        self._plain, self._ignoring_case = re.compile(pattern), re.compile(pattern, re.IGNORECASE)

    def search(self, ua: str, lowered: str | None) -> bool:
        return bool(self._plain.search(lowered) if lowered is not None else self._ignoring_case.search(ua))


# Tools, headless browsers and monitors that is-bot or ua-parser may not flag.
_EXTRA_BOTS = _Caseless(
    r"headlesschrome|phantomjs|electron/|selenium|puppeteer|playwright|python-requests|python-urllib|"
    r"aiohttp|httpx|go-http-client|okhttp|java/|libwww-perl|wget|curl/|axios/|node-fetch|"
    r"uptimerobot|pingdom|statuscake|lighthouse|gtmetrix|prerender|preview"
)
_TABLET = _Caseless(r"ipad|tablet|kindle|silk/|playbook|sm-t\d|sm-x\d|nexus (7|9|10)")
_MOBILE = _Caseless(r"mobi|iphone|ipod|android.+mobile|windows phone|blackberry|opera mini")
_DESKTOP_OS = {
    "Windows",
    "Mac OS X",
    "Linux",
    "Ubuntu",
    "Fedora",
    "Chrome OS",
    "FreeBSD",
    "OpenBSD",
    "Debian",
    "Arch Linux",
    "macOS",
}

DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")


class UserAgentInfo(NamedTuple):
    browser: str
    browser_major: str
    os: str
    os_major: str
    device: str  # one of DEVICE_TYPES
    is_bot: bool


@lru_cache(maxsize=65536)
def parse_user_agent(ua: str) -> UserAgentInfo:
    if not ua:
        return UserAgentInfo("", "", "", "", "other", False)
    result = _parser.parse(ua)
    agent, os_, device = result.user_agent, result.os, result.device
    browser = agent.family if agent and agent.family != "Other" else ""
    os_family = os_.family if os_ and os_.family != "Other" else ""
    lowered = ua.lower() if ua.isascii() else None
    bot = (device is not None and device.family == "Spider") or _EXTRA_BOTS.search(ua, lowered) or _is_listed_bot(ua)
    return UserAgentInfo(
        browser=browser,
        browser_major=(agent.major or "") if browser else "",
        os=os_family,
        os_major=(os_.major or "") if os_family else "",
        device="bot" if bot else _device_type(ua, lowered, os_family, device.brand if device else ""),
        is_bot=bot,
    )


@lru_cache(maxsize=8)
def _own_bots(patterns: tuple[str, ...]) -> Callable[[str], object]:
    return _any_of(patterns, flags=re.IGNORECASE)


def user_agent_info(ua: str, bot_user_agents: tuple[str, ...] = ()) -> UserAgentInfo:
    """parse_user_agent, and a bot too when the UA matches one of the operator's own patterns
    (events.rules: Rules.bot_user_agents)."""
    info = parse_user_agent(ua)
    if ua and not info.is_bot and _own_bots(bot_user_agents)(ua):
        return info._replace(device="bot", is_bot=True)
    return info


def _device_type(ua: str, lowered: str | None, os_family: str, brand: str | None) -> str:
    # Android tablets omit "Mobile" from their UA; ua-parser names them Generic_Android_Tablet.
    if (
        _TABLET.search(ua, lowered)
        or brand == "Generic_Android_Tablet"
        or (os_family == "Android" and "Mobile" not in ua)
    ):
        return "tablet"
    if _MOBILE.search(ua, lowered) or os_family in ("iOS", "Android"):
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"
