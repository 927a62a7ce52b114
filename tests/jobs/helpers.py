"""Shared by the job tests: submit a claim file through the API and wait for its answer."""

from __future__ import annotations

import io
import time

import orjson

FINAL = ("succeeded", "failed", "cancelled")


def csv_text(header: str, *lines: str) -> str:
    return "\n".join((header, *lines)) + "\n"


def submit(client, content: str | bytes, headers: dict | None = None, filename: str = "claims.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/v1/jobs", data={"kind": "claims", "file": (io.BytesIO(data), filename)},
                       headers=headers or {}, content_type="multipart/form-data")


def wait_for(client, job_id: str, timeout: float = 60, headers: dict | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers or {}).get_json()
        if job["state"] in FINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")


def records(client, job_id: str, headers: dict | None = None) -> list[dict]:
    response = client.get(f"/v1/jobs/{job_id}/results", headers=headers or {})
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.get_data().splitlines() if line]


def code_file(client, content: str, headers: dict | None = None) -> tuple[dict, list[dict]]:
    posted = submit(client, content, headers)
    assert posted.status_code == 202, posted.get_json()
    job = wait_for(client, posted.get_json()["id"], headers=headers)
    return job, records(client, job["id"], headers)
