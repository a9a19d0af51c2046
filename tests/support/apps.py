"""Small instrumented HTTP apps for the process tier: one per naming convention of HTTP server metrics.

    python -m tests.support.apps otel|prometheus-client --port PORT --metrics-port PORT [--namespace NS]

Each serves GET /ok (200), GET /fail (500) and GET /slow (200 after 50 ms) on 127.0.0.1:PORT, and its metrics on
127.0.0.1:METRICS_PORT/metrics, the way a real app does it:

- `otel`: the OpenTelemetry Python SDK records `http.server.request.duration` (unit s) with the stable HTTP
  semantic-convention attributes, exposed by opentelemetry-exporter-prometheus (which names metrics the way the
  collector's Prometheus exporters do). Its default buckets are millisecond-scale; a View sets second-scale
  boundaries, as the instrumentation libraries do.
- `prometheus-client`: prometheus_client's `http_requests_total{code,method,handler}` counter and
  `http_request_duration_seconds` histogram.

Only loopback is served; the process exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# The boundaries the OpenTelemetry HTTP semantic conventions recommend for http.server.request.duration.
SECOND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ROUTES = {"/ok": 200, "/fail": 500, "/slow": 200}

Record = Callable[[str, str, int, float], None]  # method, route, status, seconds


def otel_recorder(service: str, namespace: str, metrics_port: int) -> Record:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    attributes = {"service.name": service, "deployment.environment": "test"}
    if namespace:
        attributes["service.namespace"] = namespace
    provider = MeterProvider(
        resource=Resource.create(attributes),
        metric_readers=[PrometheusMetricReader()],
        views=[View(instrument_name="http.server.request.duration",
                    aggregation=ExplicitBucketHistogramAggregation(SECOND_BUCKETS))],
    )
    duration = provider.get_meter("tests.support.apps").create_histogram(
        "http.server.request.duration", unit="s", description="Duration of HTTP server requests.")
    start_http_server(metrics_port, addr="127.0.0.1")

    def record(method: str, route: str, status: int, seconds: float) -> None:
        duration.record(seconds, {"http.request.method": method, "http.route": route,
                                  "http.response.status_code": status, "url.scheme": "http"})

    return record


def prometheus_client_recorder(metrics_port: int) -> Record:
    from prometheus_client import Counter, Histogram, start_http_server

    requests = Counter("http_requests", "HTTP requests.", ["code", "method", "handler"])
    duration = Histogram("http_request_duration_seconds", "HTTP request duration.", ["method", "handler"])
    start_http_server(metrics_port, addr="127.0.0.1")

    def record(method: str, route: str, status: int, seconds: float) -> None:
        requests.labels(str(status), method, route).inc()
        duration.labels(method, route).observe(seconds)

    return record


def serve(port: int, record: Record) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            start = time.perf_counter()
            route = self.path.split("?")[0]
            status = ROUTES.get(route, 404)
            if route == "/slow":
                time.sleep(0.05)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            record("GET", route if status != 404 else "", status, time.perf_counter() - start)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("convention", choices=("otel", "prometheus-client"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--namespace", default="")
    args = parser.parse_args(argv)
    if args.convention == "otel":
        record = otel_recorder(args.service, args.namespace, args.metrics_port)
    else:
        record = prometheus_client_recorder(args.metrics_port)
    server = serve(args.port, record)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
