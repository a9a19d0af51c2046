"""Prometheus' HTTP API: targets, rule groups, Alertmanagers, queries, alerts, the admin API's series deletion and
TSDB snapshots, and its remote-write receiver.

Shapes follow prometheus/prometheus docs/querying/api.md (v2.42.0 and v3.14.0): the `{"status", "data"}` envelope,
errors as `{"status": "error", "errorType", "error"}`. Remote write is protocol 1.0: a protobuf WriteRequest
(messages from the opentelemetry-exporter-prometheus-remote-write package), snappy block-compressed."""

from __future__ import annotations

import struct
from typing import Any

from stackctl.clients.http import ApiError, HttpApi

# Prometheus' staleness marker: a NaN with this exact bit pattern ends a series at once (value.StaleNaN).
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


class Prometheus(HttpApi):
    def __init__(self, base_url: str, **kwargs):
        super().__init__(base_url, "Prometheus", **kwargs)

    def _data(self, path: str, what: str, **kwargs) -> Any:
        body = self.json("GET", path, what, **kwargs)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ApiError(f"{what}: Prometheus at {self.url(path)} answered {str(body)[:200]}")
        return body.get("data")

    def targets(self, timeout: float | None = None) -> list[dict]:
        """GET /api/v1/targets?state=active: every active target (health up | down | unknown, lastError, ...)."""
        data = self._data("/api/v1/targets", "Prometheus targets", params={"state": "active"}, timeout=timeout)
        return list(data.get("activeTargets") or [])

    def rule_groups(self, timeout: float | None = None) -> list[dict]:
        """GET /api/v1/rules: groups with their file and rules (health ok | err | unknown, lastError when err)."""
        return list(self._data("/api/v1/rules", "Prometheus rules", timeout=timeout).get("groups") or [])

    def alertmanagers(self, timeout: float | None = None) -> dict:
        """GET /api/v1/alertmanagers: {activeAlertmanagers: [{url}], droppedAlertmanagers: [...]}."""
        return self._data("/api/v1/alertmanagers", "Prometheus Alertmanagers", timeout=timeout)

    def query(self, promql: str, timeout: float | None = None) -> list[dict]:
        """An instant query; the vector's samples ({metric, value: [ts, "v"]})."""
        data = self._data("/api/v1/query", "Prometheus query", params={"query": promql}, timeout=timeout)
        return list(data.get("result") or [])

    def alerts(self, timeout: float | None = None) -> list[dict]:
        """GET /api/v1/alerts: alerts of alerting rules, pending or firing."""
        return list(self._data("/api/v1/alerts", "Prometheus alerts", timeout=timeout).get("alerts") or [])

    def delete_series(self, selector: str, timeout: float | None = None) -> None:
        """POST /api/v1/admin/tsdb/delete_series (needs --web.enable-admin-api; 204 on success)."""
        self.call("POST", "/api/v1/admin/tsdb/delete_series", "Prometheus series deletion",
                  params={"match[]": selector}, timeout=timeout)

    def snapshot(self, timeout: float | None = 600) -> str:
        """POST /api/v1/admin/tsdb/snapshot (needs --web.enable-admin-api): the new snapshot's directory name under
        <data dir>/snapshots. The head block is included (it is written out as a block first, which takes a moment)."""
        body = self.json("POST", "/api/v1/admin/tsdb/snapshot", "Prometheus TSDB snapshot", timeout=timeout)
        name = ((body or {}).get("data") or {}).get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ApiError(f"Prometheus TSDB snapshot: {self.url('/api/v1/admin/tsdb/snapshot')} answered without a "
                           f"usable snapshot name: {str(body)[:200]}")
        return name

    def remote_write(self, series: list[tuple[dict[str, str], float, int]], timeout: float | None = None) -> None:
        """POST /api/v1/write: each (labels with __name__, value, timestamp in ms) as one sample (204 expected)."""
        import snappy
        from opentelemetry.exporter.prometheus_remote_write.gen.remote_pb2 import WriteRequest
        from opentelemetry.exporter.prometheus_remote_write.gen.types_pb2 import Label, Sample, TimeSeries

        request = WriteRequest()
        for labels, value, timestamp_ms in series:
            ts = TimeSeries()
            ts.labels.extend(Label(name=k, value=v) for k, v in sorted(labels.items()))
            ts.samples.append(Sample(value=value, timestamp=timestamp_ms))
            request.timeseries.append(ts)
        self.call("POST", "/api/v1/write", "Prometheus remote write", data=snappy.compress(request.SerializeToString()),
                  headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                           "X-Prometheus-Remote-Write-Version": "0.1.0"}, timeout=timeout)
