"""Alertmanager's API v2: posting alerts, reading them back with their receivers, and silences (listed, created,
expired).

Shapes follow prometheus/alertmanager api/v2/openapi.yaml (v0.25.0 and v0.34.0): POST /alerts answers 200 with an
empty body; GET /alerts is always an array whose items carry `receivers` [{name}] and `status`
{state, silencedBy, inhibitedBy}; error bodies are JSON strings."""

from __future__ import annotations

from datetime import datetime, timezone

from stackctl.clients.http import ApiError, HttpApi


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as Alertmanager reads it."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class Alertmanager(HttpApi):
    def __init__(self, base_url: str, **kwargs):
        super().__init__(base_url, "Alertmanager", **kwargs)

    def post_alerts(self, alerts: list[dict], timeout: float | None = None) -> None:
        """POST /api/v2/alerts: [{labels, annotations, startsAt, endsAt, generatorURL}]."""
        self.call("POST", "/api/v2/alerts", "Alertmanager alert post", json=alerts, timeout=timeout)

    def alerts(self, matchers: list[str], timeout: float | None = None) -> list[dict]:
        """GET /api/v2/alerts with `filter` matchers (label="value"), silenced and inhibited ones included."""
        params = [("filter", m) for m in matchers] + [("silenced", "true"), ("inhibited", "true"),
                                                      ("active", "true"), ("unprocessed", "true")]
        body = self.json("GET", "/api/v2/alerts", "Alertmanager alerts", params=params, timeout=timeout)
        if not isinstance(body, list):
            raise ApiError(f"Alertmanager alerts: {self.url('/api/v2/alerts')} did not answer a list")
        return body

    def create_silence(self, matchers: dict[str, str], starts: datetime, ends: datetime, created_by: str,
                       comment: str, timeout: float | None = None) -> str:
        """POST /api/v2/silences with equality matchers; the new silence's id."""
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
                "startsAt": timestamp(starts), "endsAt": timestamp(ends), "createdBy": created_by, "comment": comment}
        answer = self.json("POST", "/api/v2/silences", "Alertmanager silence", json=body, timeout=timeout)
        return str(answer["silenceID"])

    def silences(self, timeout: float | None = None) -> list[dict]:
        """GET /api/v2/silences: every silence it holds, expired ones included (status.state active | pending |
        expired)."""
        body = self.json("GET", "/api/v2/silences", "Alertmanager silences", timeout=timeout)
        if not isinstance(body, list):
            raise ApiError(f"Alertmanager silences: {self.url('/api/v2/silences')} did not answer a list")
        return body

    def post_silence(self, silence: dict, timeout: float | None = None) -> str:
        """POST /api/v2/silences with a postableSilence ({matchers, startsAt, endsAt, createdBy, comment}, no id:
        a new silence); its id."""
        answer = self.json("POST", "/api/v2/silences", "Alertmanager silence", json=silence, timeout=timeout)
        if not isinstance(answer, dict) or not answer.get("silenceID"):
            raise ApiError(f"Alertmanager silence: {self.url('/api/v2/silences')} answered without a silenceID")
        return str(answer["silenceID"])

    def expire_silence(self, silence_id: str, timeout: float | None = None) -> None:
        """DELETE /api/v2/silence/{id}: expires it (it stays listed as expired)."""
        self.call("DELETE", f"/api/v2/silence/{silence_id}", "Alertmanager silence expiry", timeout=timeout)
