"""POST /v1/analyze: suggestions per symptom and the combined summary."""

from __future__ import annotations


def test_symptoms_get_suggestions_and_a_summary(client) -> None:
    response = client.post("/v1/analyze", json={"symptoms": ["chest pain", "short of breath", "sweating"]})
    body = response.get_json()
    assert response.status_code == 200
    assert [r["symptom"] for r in body["results"]] == ["chest pain", "short of breath", "sweating"]
    assert body["results"][0]["suggestions"][0]["code"] == "R07.9"
    assert body["results"][1]["suggestions"][0]["code"] == "R06.02"
    assert all(0 <= s["confidence"] <= 1 for r in body["results"] for s in r["suggestions"])
    summary = body["summary"]
    assert summary["chapters"][0]["chapter"] == 18 and 0 < summary["confidence"] <= 1


def test_a_code_supported_by_two_symptoms_comes_first(client) -> None:
    summary = client.post("/v1/analyze", json={"symptoms": ["fever", "febrile", "cough"]}).get_json()["summary"]
    assert summary["codes"][0]["code"] == "R50.9"
    assert summary["codes"][0]["supported_by"] == ["fever", "febrile"]


def test_bad_bodies_are_4xx(client) -> None:
    assert client.post("/v1/analyze", json={"symptoms": ["pain"] * 101}).status_code == 413
    for body in ({}, {"symptoms": []}, {"symptoms": "pain"}, {"symptoms": [""]}, {"symptoms": [3]},
                 {"symptoms": ["x" * 2000]}):
        response = client.post("/v1/analyze", json=body)
        assert response.status_code == 400 and response.get_json()["error"]["code"]
    assert client.post("/v1/analyze", data=b"\xff", content_type="application/json").status_code == 400
