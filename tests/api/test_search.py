"""GET /v1/search: ranked results, filters, the search log, and bad input as 4xx envelopes."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def test_search_ranks_the_canonical_code_first(client) -> None:
    response = client.get("/v1/search?q=high%20blood%20pressure&limit=3")
    body = response.get_json()
    assert response.status_code == 200
    assert [r["code"] for r in body["results"]][0] == "I10"
    assert set(body["results"][0]) >= {"code", "description", "billable", "score"}
    assert response.headers["Server-Timing"].startswith("app;dur=") and response.headers["X-Request-Id"]


def test_filters(client) -> None:
    billable = client.get("/v1/search?q=asthma&billable=true&limit=20").get_json()["results"]
    assert billable and all(r["billable"] for r in billable)
    chapter = client.get("/v1/search?q=diabetes&chapter=15").get_json()["results"]
    assert chapter and all(r["code"].startswith("O") for r in chapter)


def test_searches_are_logged_in_batches(client, database_url, app) -> None:
    from db.engine import transaction
    from db.searchlog import search_log

    marker = "searchlogmarker asthma"
    assert client.get(f"/v1/search?q={marker}").status_code == 200
    search_log(app.config["DATABASE_URL"]).flush()
    with transaction(database_url) as conn:
        row = conn.execute(text("SELECT results, cache_hit, latency_ms FROM search_log WHERE query = :q "
                                "ORDER BY created_at DESC LIMIT 1"), {"q": marker}).first()
    assert row is not None and row.latency_ms >= 0


@pytest.mark.parametrize(("query", "code"), [
    ("", "EMPTY_QUERY"), ("q=", "EMPTY_QUERY"), ("q=" + "a" * 2000, "QUERY_TOO_LONG"),
    ("q=chest%00pain", "INVALID_QUERY"), ("q=chest%07pain", "INVALID_QUERY"),
    ("q=%ff%fe", "INVALID_ENCODING"), ("q=%25%25", "INVALID_QUERY"),
    ("q=pain&limit=-1", "INVALID_PARAMETER"), ("q=pain&limit=1000000000", "INVALID_PARAMETER"),
    ("q=pain&limit=abc", "INVALID_PARAMETER"), ("q=pain&chapter=23", "UNKNOWN_CHAPTER"),
    ("q=pain&chapter=Z", "UNKNOWN_CHAPTER"), ("q=pain&billable=maybe", "INVALID_PARAMETER"),
])
def test_bad_input_is_a_4xx_envelope(client, query, code) -> None:
    response = client.get("/v1/search", environ_overrides={"QUERY_STRING": query})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


@pytest.mark.parametrize("q", ["'; DROP TABLE icd_codes; --", "\" OR 1=1 --", "%_\\", "asthma' UNION SELECT 1"])
def test_sql_metacharacters_are_just_text(client, q) -> None:
    response = client.get("/v1/search", query_string={"q": q})
    assert response.status_code in (200, 400)
    assert "error" in response.get_json() or isinstance(response.get_json()["results"], list)
    assert client.get("/v1/codes/I10").status_code == 200
