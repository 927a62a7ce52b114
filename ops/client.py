"""HTTP client for the CLI's client commands: the API at ICDQ_API_URL, errors as one clear line."""

from __future__ import annotations

import os

import click
import httpx

from ops import config


def api_client(timeout: float = 30.0) -> httpx.Client:
    settings = config.load()
    headers = {}
    if key := os.environ.get("ICDQ_API_KEY"):
        headers["X-API-Key"] = key
    return httpx.Client(base_url=settings.api_url, headers=headers, timeout=timeout)


def checked(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}"
        raise click.ClickException(message)
    return response.json()


def call(method: str, path: str, **kwargs) -> dict:
    try:
        with api_client() as client:
            return checked(client.request(method, path, **kwargs))
    except httpx.TransportError as err:
        raise click.ClickException(
            f"cannot reach the icdq API at {config.load().api_url} ({type(err).__name__}); "
            "is `icdq up` running? (ICDQ_API_URL sets the address)") from None
