"""PostgreSQL URLs split into what may be shown and the secrets handed over in the
environment, and compared by server and database however they are written."""

from __future__ import annotations

from zerodown.backup.postgres import Connection, split_password


def test_every_secret_leaves_the_url_and_comes_back_only_on_request() -> None:
    url = "postgresql://app:p%40ss@db.example:5433/prod?sslmode=require&password=q&sslpassword=s"
    connection = Connection.parse(url)
    assert connection.url == "postgresql://app@db.example:5433/prod?sslmode=require"
    assert (connection.password, connection.sslpassword) == ("p@ss", "s")
    assert split_password(url) == (connection.url, "p@ss")
    assert connection.with_database("z").with_secrets_url() == (
        "postgresql://app:p%40ss@db.example:5433/z?sslmode=require&sslpassword=s"
    )
    query_only = Connection.parse("postgresql://app@h/db?password=q")
    assert (query_only.url, query_only.password) == ("postgresql://app@h/db", "q")


def test_a_local_socket_url_keeps_its_empty_host() -> None:
    connection = Connection.parse("postgresql:///app?host=/var/run/postgresql")
    assert connection.url == "postgresql:///app?host=/var/run/postgresql"
    assert connection.with_database("other").url == "postgresql:///other?host=/var/run/postgresql"


def test_the_same_database_is_recognised_however_it_is_written() -> None:
    live = Connection.parse("postgresql://app:pw@127.0.0.1:5432/shop")
    for same in (
        "postgresql://app@localhost/shop",
        "postgresql://other@[::1]:5432/shop?connect_timeout=5",
        "postgresql:///shop",
    ):
        assert live.same_database(Connection.parse(same)), same
    for other in ("postgresql://app@127.0.0.1:5433/shop", "postgresql://app@staging/shop"):
        assert not live.same_database(Connection.parse(other)), other
    assert not live.same_database(Connection.parse("postgresql://app@127.0.0.1/shop_copy"))
