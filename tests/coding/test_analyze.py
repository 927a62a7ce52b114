"""Symptom analysis: per-text suggestions in a batch, and the combined summary."""

from __future__ import annotations

from cache.client import shared_cache
from coding.analyze import analyze_texts, summarize
from coding.lookup import analyze_texts as analyze_from_lookup


def test_each_text_gets_ranked_suggestions_with_confidence(conn, endpoints) -> None:
    texts = ["chest pain", "", "shortness of breath", "qwzx", "chest pain"]
    answers = analyze_texts(conn, shared_cache(endpoints.cache_url), texts)
    assert len(answers) == len(texts)
    assert answers[0][0]["code"] == "R07.9" and answers[4] == answers[0]
    assert answers[1] == [] and answers[3] == []
    assert answers[2][0]["code"] == "R06.02"
    confidences = [s["confidence"] for s in answers[0]]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)


def test_the_claims_interface_works_without_a_cache(conn) -> None:
    assert analyze_from_lookup(conn, None, ["pt c/o sugar diabetes"])[0][0]["code"] == "E11.9"


def test_long_clinical_text_with_control_characters_is_still_coded(conn) -> None:
    text = "Patient presents with\tpneumonia\n" + "x" * 3000
    assert analyze_texts(conn, None, [text])[0][0]["code"] == "J18.9"


def test_summary_ranks_codes_supported_by_several_symptoms_first(conn) -> None:
    symptoms = ["chest pain", "pain in chest", "fever"]
    summary = summarize(symptoms, analyze_texts(conn, None, symptoms))
    assert summary["codes"][0]["code"] == "R07.9"
    assert summary["codes"][0]["supported_by"] == ["chest pain", "pain in chest"]
    assert summary["chapters"][0]["chapter"] == 18
    assert 0 < summary["confidence"] <= 1
