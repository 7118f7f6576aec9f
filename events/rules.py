"""The operator's own enrichment rules: what a deployment adds to the built-in ones.

They come from the settings and are handed to the enrichment as a value (the Spark job binds
them into the function its workers run, the Flink job into its UDF), never read from the
environment inside a worker: a worker started before a change would apply the old rules, and
a re-run day must be closed with exactly the rules its run was given.

Changing a rule changes new events at once (after restarting `pixel speed`) and closed days only
when they are re-run (`pixel reprocess --from D1 --to D2`), which restates the days it changes.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple


class Rules(NamedTuple):
    # Case-insensitive regular expressions; a hit whose user agent matches one is a bot (besides
    # is-bot's list and ua-parser's spiders), e.g. the site's own uptime monitor.
    bot_user_agents: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """A short hash of the rules (lineage): equal rules, equal fingerprint."""
        return hashlib.sha256("\n".join(self.bot_user_agents).encode()).hexdigest()[:16]


NO_RULES = Rules()


def check_patterns(patterns: list[str]) -> list[str]:
    """The patterns if each compiles, else a ValueError naming the one that doesn't."""
    for pattern in patterns:
        if not pattern:
            raise ValueError("an empty pattern would match every user agent")
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"bad regular expression {pattern!r}: {error}") from None
    return patterns
