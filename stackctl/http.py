"""The HTTP shell: readiness probes from the host (and later the services' APIs)."""

from __future__ import annotations


def probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET `url`; ready means a 2xx answer. Returns (ok, a short reason when not ok)."""
    import requests  # kept off the --help path

    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        return False, f"{type(error).__name__}: no answer from {url}"
    if 200 <= response.status_code < 300:
        return True, ""
    return False, f"{url} answered {response.status_code}"
