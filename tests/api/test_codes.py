"""GET /v1/codes/{code} and POST /v1/codes/lookup."""

from __future__ import annotations


def test_one_code_in_any_format(client) -> None:
    response = client.get("/v1/codes/e11.9")
    body = response.get_json()
    assert response.status_code == 200
    assert (body["code"], body["billable"], body["chapter"], body["block"]) == ("E11.9", True, 4, "E08-E13")
    assert body["parents"] == [{"code": "E11", "description": "Type 2 diabetes mellitus"}]
    assert body["excludes1"] and body["releases"]
    assert response.headers["Server-Timing"].startswith("app;dur=")


def test_a_code_needing_a_seventh_character_shows_the_options(client) -> None:
    body = client.get("/v1/codes/S52.521").get_json()
    assert body["billable"] is False and body["requires_seventh"] and "A" in body["seven_char"]


def test_unknown_and_who_only_codes_are_404_with_the_reason(client) -> None:
    unknown = client.get("/v1/codes/U99.9")
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "CODE_NOT_FOUND"
    who = client.get("/v1/codes/E14.9").get_json()["error"]
    assert who["code"] == "CODE_NOT_FOUND" and "WHO" in who["message"]


def test_batch_lookup_keeps_order_duplicates_and_marks_invalid_ones(client) -> None:
    codes = ["e119", "E11.9", "I10", "B59", "zzz", "E14.9", "S52.521A"]
    response = client.post("/v1/codes/lookup", json={"codes": codes})
    results = response.get_json()["results"]
    assert response.status_code == 200
    assert [r["input"] for r in results] == codes
    assert [r["valid"] for r in results] == [True, True, True, True, False, False, True]
    assert results[5]["who_only"] and "WHO" in results[5]["message"]


def test_ten_thousand_codes_are_accepted_and_more_is_413(client) -> None:
    ok = client.post("/v1/codes/lookup", json={"codes": ["I10"] * 10_000})
    assert ok.status_code == 200 and len(ok.get_json()["results"]) == 10_000
    too_many = client.post("/v1/codes/lookup", json={"codes": ["I10"] * 10_001})
    assert too_many.status_code == 413 and too_many.get_json()["error"]["code"] == "TOO_MANY_CODES"


def test_malformed_lookup_bodies_are_400(client) -> None:
    for body in ({}, {"codes": []}, {"codes": "I10"}, {"codes": [1, 2]}, {"codes": ["x" * 500]}):
        response = client.post("/v1/codes/lookup", json=body)
        assert response.status_code == 400 and "error" in response.get_json()
    broken = client.post("/v1/codes/lookup", data=b"\xff\xfe{", content_type="application/json")
    assert broken.status_code == 400
    assert client.get("/v1/codes/" + "E" * 200).status_code == 400


def test_lookup_works_with_the_cache_down(endpoints, settings) -> None:
    from api import create_app

    app = create_app(settings, CACHE_URL="redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI="memory://")
    with app.test_client() as down:
        assert down.get("/v1/codes/I10").status_code == 200
        assert down.get("/v1/search?q=asthma").get_json()["results"][0]["code"] == "J45.909"
