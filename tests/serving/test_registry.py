"""The site registry on SQLite and on the running PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from serving.registry import Registry, RegistryError, hash_token

pytestmark = pytest.mark.fast
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path):
    if request.param == "sqlite":
        yield Registry(f"sqlite:///{tmp_path / 'registry.db'}")
        return
    name = f"pixel_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc}); registry tests need it")
    admin.execute(f'CREATE DATABASE "{name}"')
    registry = Registry(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    yield registry
    registry.engine.dispose()
    admin.execute(f'DROP DATABASE "{name}"')
    admin.close()


def test_sites_are_created_normalized_and_listed(registry):
    registry.create_site("WWW.Example.com")
    registry.create_site("blog.example.org", public=True)
    assert [(s.domain, s.public, s.tokens) for s in registry.list_sites()] == [
        ("blog.example.org", True, 0),
        ("example.com", False, 0),
    ]
    with pytest.raises(RegistryError, match="already exists"):
        registry.create_site("example.com")
    with pytest.raises(RegistryError, match="not a domain name"):
        registry.create_site("not a domain/")


def test_tokens_are_stored_hashed_and_open_only_their_site(registry):
    registry.create_site("a.example")
    registry.create_site("b.example")
    token = registry.create_token("a.example")
    assert token.startswith("px_") and len(token) > 40
    with registry.engine.connect() as db:
        stored = [r[0] for r in db.exec_driver_sql("SELECT token_sha256 FROM pixel_tokens")]
    assert stored == [hash_token(token)] and token not in stored
    assert registry.can_read("a.example", token)
    assert not registry.can_read("b.example", token)
    assert not registry.can_read("a.example", None) and not registry.can_read("a.example", token + "x")
    assert registry.site("a.example").tokens == 1
    with pytest.raises(RegistryError, match="pixel sites create"):
        registry.create_token("nowhere.example")


def test_a_public_site_is_readable_without_a_token(registry):
    registry.create_site("a.example", public=True)
    assert registry.can_read("a.example", None)
    registry.set_public("a.example", False)
    assert not registry.can_read("a.example", None)
    assert not registry.can_read("unknown.example", None)


def test_goals_are_created_listed_and_deleted(registry):
    from serving.analytics.goals import Goal
    from serving.registry import RegistryError

    registry.create_site("a.example")
    assert registry.create_goal("a.example", event="Signup") == Goal(event="Signup")
    registry.create_goal("a.example", page="/thanks*")
    assert [g.name for g in registry.goals("a.example")] == ["Signup", "Visit /thanks*"]
    for bad in ({}, {"event": "A", "page": "/b"}, {"page": "thanks"}, {"event": "x" * 65}):
        with pytest.raises(RegistryError):
            registry.create_goal("a.example", **bad)
    with pytest.raises(RegistryError, match="already"):
        registry.create_goal("a.example", event="Signup")
    with pytest.raises(RegistryError, match="no site"):
        registry.create_goal("b.example", event="Signup")
    registry.delete_goal("a.example", "Visit /thanks*")
    assert registry.goals("a.example") == [Goal(event="Signup")]
    with pytest.raises(RegistryError, match="no goal"):
        registry.delete_goal("a.example", "Visit /thanks*")
    assert registry.goals("b.example") == []
