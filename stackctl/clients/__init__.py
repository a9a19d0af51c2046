"""One module per service API (Elasticsearch, Grafana, Kibana, ...), over one HTTP session helper (http)."""
