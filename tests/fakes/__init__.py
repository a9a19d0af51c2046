"""Fakes of upstream APIs for contract tests: small in-process stand-ins built from the services' documented
requests and responses, one module per API. Each module says FAKE in its docstring; none of them is the real service."""
