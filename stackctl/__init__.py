"""stackctl: one stack.yaml to a running, provisioned monitoring stack on Docker Compose."""

__version__ = "0.1.0"
