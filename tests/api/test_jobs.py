"""The job API end to end through Flask's client and a real worker: format variants, edits, pages."""

from __future__ import annotations

import csv
import io
import time

import pytest

from tests.jobs.helpers import code_file, csv_text, records, submit, wait_for

pytestmark = pytest.mark.usefixtures("worker")


def test_claim_file_is_coded_in_input_order(client):
    job, lines = code_file(client, csv_text("claim_id,dx1,dx2", "A1,E11.9,I10", "A2,e119,", "A3,XYZ,I10"))
    assert job["state"] == "succeeded"
    assert job["progress"] == {"done": 3, "total": 3}
    assert [r["line"] for r in lines] == [1, 2, 3]
    assert [r["claim_id"] for r in lines] == ["A1", "A2", "A3"]
    assert lines[0]["status"] == "ok" and lines[0]["diagnoses"][0]["code"] == "E11.9"
    assert lines[1]["diagnoses"][0] == {"position": 1, "input": "e119", "code": "E11.9", "valid": True,
                                        "billable": True, "description": lines[0]["diagnoses"][0]["description"]}
    assert lines[2]["status"] == "error" and lines[2]["edits"][0]["edit"] == "INVALID_CODE"
    assert job["counts"]["status"] == {"ok": 2, "error": 1}
    assert job["counts"]["edits"] == {"INVALID_CODE": 1}


def test_format_variants_bom_crlf_diagnosis_headers_and_25_columns(client):
    header = "\ufeffClaim_ID," + ",".join(f"diagnosis_{i}" for i in range(1, 26))
    codes = ["I10", "E11.9"] + [""] * 23
    content = csv_text(header, "C1," + ",".join(codes)).replace("\n", "\r\n")
    job, lines = code_file(client, content)
    assert job["state"] == "succeeded"
    assert [d["code"] for d in lines[0]["diagnoses"]] == ["I10", "E11.9"]
    wide = "claim_id," + ",".join(f"dx{i}" for i in range(1, 26))
    job, lines = code_file(client, csv_text(wide, "W1," + ",".join(["Z00.00"] * 24 + ["i10"])))
    assert lines[0]["diagnoses"][24] == {**lines[0]["diagnoses"][24], "position": 25, "code": "I10"}
    assert {e["edit"] for e in lines[0]["edits"]} == {"DUPLICATE_CODE"}


def test_a_malformed_line_is_reported_and_the_rest_is_coded(client):
    content = csv_text("claim_id,dx1,age", "M1,I10,40", "M2,I10", 'M3,"I10,40', "M4,I10,abc", ",I10,3",
                       "M6,I10,50")
    job, lines = code_file(client, content)
    assert job["progress"]["done"] == 6 and len(lines) == 6
    by_id = {r["line"]: r for r in lines}
    assert by_id[1]["status"] == "ok" and by_id[6]["status"] == "ok"
    for line in (2, 3, 5):
        assert by_id[line]["status"] == "error"
        assert by_id[line]["edits"][0]["edit"] == "MALFORMED_LINE"
    assert by_id[4]["edits"][0]["edit"] == "MALFORMED_LINE" and by_id[4]["diagnoses"][0]["valid"]


@pytest.mark.parametrize(("content", "status", "code"), [
    (b"", 400, "EMPTY_FILE"),
    (b"dx1,dx2\nE119,I10\n", 422, "MISSING_CLAIM_ID"),
    (b"claim_id,sex\nA,M\n", 422, "NO_DIAGNOSIS_COLUMN"),
    (b"claim_id,dx1\nA,\xff\xfe\n", 422, "NOT_UTF8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", 422, "NOT_UTF8"),
    (b"claim_id,dx1\n", 422, "NO_DATA_LINES"),
    (b"claim_id,dx1\nA\x00,I10\n", 422, "NOT_CSV"),
])
def test_unusable_files_are_refused_without_a_job(client, conn, content, status, code):
    from sqlalchemy import text

    before = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    response = submit(client, content)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == before


def test_bad_requests_get_the_error_envelope(client):
    assert client.post("/v1/jobs", data="x", content_type="text/plain").status_code == 415
    bad = client.post("/v1/jobs", json={"kind": "lookup", "codes": "E119"})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "INVALID_BATCH"
    assert client.get("/v1/jobs/not-a-uuid").status_code == 404
    assert client.get("/v1/jobs/00000000-0000-0000-0000-000000000000").get_json()["error"]["code"] == \
        "JOB_NOT_FOUND"
    posted = submit(client, csv_text("claim_id,dx1", "A,I10"))
    job_id = posted.get_json()["id"]
    wait_for(client, job_id)
    assert client.get(f"/v1/jobs/{job_id}/results?limit=0").status_code == 400
    assert client.get(f"/v1/jobs/{job_id}/results?format=xml").status_code == 400


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(client):
    content = csv_text("claim_id,dx1", "I1,I10")
    first = submit(client, content, {"Idempotency-Key": "key-1"})
    again = submit(client, content, {"Idempotency-Key": "key-1"})
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = submit(client, csv_text("claim_id,dx1", "I1,E119"), {"Idempotency-Key": "key-1"})
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert submit(client, content, {"Idempotency-Key": "key-2"}).get_json()["id"] != first.get_json()["id"]


def test_pages_follow_the_link_and_csv_is_spreadsheet_safe(client):
    lines = [f"P{i},I10" for i in range(1, 8)] + ['=HYPERLINK("x"),I10', "+1,I10", "-2,I10", "@SUM(A1),E119"]
    posted = submit(client, csv_text("claim_id,dx1", *lines))
    job = wait_for(client, posted.get_json()["id"])
    seen, url = [], f"/v1/jobs/{job['id']}/results?limit=4"
    while url:
        page = client.get(url)
        seen += [r["line"] for r in (__import__("orjson").loads(x) for x in page.get_data().splitlines())]
        url = page.headers.get("Link", "").partition("<")[2].partition(">")[0] or None
    assert seen == list(range(1, 12))
    text = client.get(f"/v1/jobs/{job['id']}/results?format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["claim_id"] for r in rows[7:]] == ["'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)"]
    assert rows[0]["codes"] == "I10" and rows[0]["status"] == "ok"


def test_results_of_many_chunks_come_back_in_order_and_pages_cross_chunks(client, conn, monkeypatch):
    from sqlalchemy import text

    monkeypatch.setattr("jobs.claims.CHUNK_LINES", 3)  # the worker runs in this process
    job, found = code_file(client, csv_text("claim_id,dx1", *(f"S{i},I10" for i in range(1, 12))))
    assert job["state"] == "succeeded" and job["progress"] == {"done": 11, "total": 11}
    stored = conn.execute(text("SELECT first_line, lines FROM job_results WHERE job_id = :id ORDER BY 1"),
                          {"id": job["id"]}).all()
    assert [tuple(r) for r in stored] == [(1, 3), (4, 3), (7, 3), (10, 2)]
    assert [(r["line"], r["claim_id"]) for r in found] == [(i, f"S{i}") for i in range(1, 12)]
    pages, url = [], f"/v1/jobs/{job['id']}/results?limit=4"
    while url:
        page = client.get(url)
        pages.append([r["line"] for r in (__import__("orjson").loads(x) for x in page.get_data().splitlines())])
        url = page.headers.get("Link", "").partition("<")[2].partition(">")[0] or None
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]


def test_cancel_stops_the_job_and_keeps_what_was_coded(client, celery_app):
    posted = submit(client, csv_text("claim_id,dx1,dx2", *(f"K{i},I10,E11.9" for i in range(200_000))))
    job_id = posted.get_json()["id"]
    while client.get(f"/v1/jobs/{job_id}").get_json()["progress"]["done"] == 0:
        time.sleep(0.05)
    cancelled = client.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    job = wait_for(client, job_id)
    assert job["state"] == "cancelled"
    time.sleep(2)  # chunks already running may still finish; none may start
    job = client.get(f"/v1/jobs/{job_id}").get_json()
    assert 0 < len(records(client, job_id)) == job["progress"]["done"] < 200_000
    assert sum(job["counts"]["status"].values()) == job["progress"]["done"]
    again = client.delete(f"/v1/jobs/{job_id}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "JOB_FINISHED"


def test_lookup_and_analyze_batches(client):
    posted = client.post("/v1/jobs", json={"kind": "lookup", "codes": ["e11.9", "XYZ", "S52.501"]})
    assert posted.status_code == 202
    job = wait_for(client, posted.get_json()["id"])
    found = records(client, job["id"])
    assert [(r["code"], r["valid"], r["billable"]) for r in found] == [
        ("E11.9", True, True), (None, False, False), ("S52.501", True, False)]
    posted = client.post("/v1/jobs", json={"kind": "analyze", "symptoms": ["type 2 diabetes"]})
    job = wait_for(client, posted.get_json()["id"])
    assert job["state"] == "succeeded"
    assert records(client, job["id"])[0]["suggestions"]
