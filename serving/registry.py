"""Sites and API tokens, in SQL through SQLAlchemy: SQLite by default (a file in the data dir),
PostgreSQL (or any SQLAlchemy URL) in production via PIXEL_REGISTRY_URL.

Tokens are shown once and stored as SHA-256 hashes. A slow password hash (bcrypt, argon2) buys
nothing here: a token is 256 random bits, not a human-chosen secret, so its hash can't be
brute-forced, and a fast hash keeps every API request's check cheap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from events.raw import FIELD_LIMITS
from events.sites import normalize_site
from serving.analytics.goals import MAX_GOALS, Goal

TOKEN_PREFIX = "px_"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

metadata = MetaData()
sites = Table(
    "pixel_sites",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("public", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
tokens = Table(
    "pixel_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(253), ForeignKey("pixel_sites.domain", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("hint", String(12), nullable=False),  # the token's last characters, to tell tokens apart
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


goals = Table(
    "pixel_goals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(253), ForeignKey("pixel_sites.domain", ondelete="CASCADE"), nullable=False, index=True),
    Column("event", String(64), nullable=False, default=""),  # an event goal: the event's name
    Column("page", String(1000), nullable=False, default=""),  # a page goal: a path pattern (* wildcards)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("site", "event", "page"),
)


class RegistryError(ValueError):
    """A refused operation; the message says why and what to do."""


@dataclass(frozen=True)
class Site:
    domain: str
    public: bool
    created_at: dt.datetime
    tokens: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_domain(domain: str) -> str:
    value = normalize_site(domain)
    if not _DOMAIN.match(value):
        raise RegistryError(f"{domain!r} is not a domain name (e.g. example.com, blog.example.com)")
    return value


class Registry:
    def __init__(self, url: str):
        self.engine = create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    def create_site(self, domain: str, public: bool = False) -> Site:
        domain = normalize_domain(domain)
        try:
            with self.engine.begin() as db:
                db.execute(insert(sites).values(domain=domain, public=public))
        except IntegrityError:
            raise RegistryError(f"site {domain} already exists (see `pixel sites list`)") from None
        return self.site(domain)

    def set_public(self, domain: str, public: bool) -> None:
        with self.engine.begin() as db:
            if not db.execute(update(sites).where(sites.c.domain == domain).values(public=public)).rowcount:
                raise RegistryError(f"no site {domain}: create it with `pixel sites create {domain}`")

    def site(self, domain: str) -> Site | None:
        found = self._sites(sites.c.domain == domain)
        return found[0] if found else None

    def list_sites(self) -> list[Site]:
        return self._sites()

    def _sites(self, *where) -> list[Site]:
        count = select(func.count()).where(tokens.c.site == sites.c.domain).scalar_subquery()
        with self.engine.connect() as db:
            rows = db.execute(
                select(sites.c.domain, sites.c.public, sites.c.created_at, count).where(*where).order_by(sites.c.domain)
            ).all()
        return [Site(d, bool(p), c, n) for d, p, c, n in rows]

    def create_token(self, domain: str) -> str:
        """A new API token for the site, returned once; only its hash is kept."""
        if self.site(domain) is None:
            raise RegistryError(f"no site {domain}: create it with `pixel sites create {domain}`")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as db:
            db.execute(insert(tokens).values(site=domain, token_sha256=hash_token(token), hint=token[-4:]))
        return token

    def create_goal(self, domain: str, event: str = "", page: str = "") -> Goal:
        """A goal: an event's name, or a page pattern (``/thanks``, ``/blog/*``)."""
        event, page = event.strip(), page.strip()
        if bool(event) == bool(page):
            raise RegistryError("a goal is an event (--event Signup) or a page (--page '/thanks*'), one of them")
        if event and len(event) > FIELD_LIMITS["event"]:
            raise RegistryError(f"an event name is at most {FIELD_LIMITS['event']} characters")
        if page and (not page.startswith("/") or len(page) > 1000):
            raise RegistryError("a page goal is a path starting with / (at most 1,000 characters; * matches anything)")
        if self.site(domain) is None:
            raise RegistryError(f"no site {domain}: create it with `pixel sites create {domain}`")
        if len(self.goals(domain)) >= MAX_GOALS:
            raise RegistryError(f"site {domain} has {MAX_GOALS} goals already: delete one first")
        try:
            with self.engine.begin() as db:
                db.execute(insert(goals).values(site=domain, event=event, page=page))
        except IntegrityError:
            raise RegistryError(f"site {domain} has that goal already (see `pixel goals list {domain}`)") from None
        return Goal(event, page)

    def goals(self, domain: str) -> list[Goal]:
        """The site's goals, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(select(goals.c.event, goals.c.page).where(goals.c.site == domain).order_by(goals.c.id))
            return [Goal(event, page) for event, page in rows]

    def delete_goal(self, domain: str, name: str) -> None:
        """Delete a goal by its name (the event's, or "Visit <pattern>")."""
        found = next((g for g in self.goals(domain) if g.name == name), None)
        if found is None:
            raise RegistryError(f"site {domain} has no goal {name!r} (see `pixel goals list {domain}`)")
        with self.engine.begin() as db:
            db.execute(
                delete(goals).where(goals.c.site == domain, goals.c.event == found.event, goals.c.page == found.page)
            )

    def delete_site(self, domain: str) -> None:
        """Forget a site, its tokens and its goals (its data stays unless purged)."""
        with self.engine.begin() as db:
            db.execute(delete(tokens).where(tokens.c.site == domain))
            db.execute(delete(goals).where(goals.c.site == domain))
            if not db.execute(delete(sites).where(sites.c.domain == domain)).rowcount:
                raise RegistryError(f"no site {domain} (see `pixel sites list`)")

    def can_read(self, domain: str, token: str | None) -> bool:
        """A public site to anyone; a private one with one of its own tokens."""
        with self.engine.connect() as db:
            public = db.execute(select(sites.c.public).where(sites.c.domain == domain)).scalar_one_or_none()
            if public is None:
                return False
            if public:
                return True
            if not token:
                return False
            owner = db.execute(select(tokens.c.site).where(tokens.c.token_sha256 == hash_token(token))).scalar()
        return owner == domain
