"""Thin shells around side effects, one module each: subprocesses (runner), the Compose CLI, the Docker engine,
the filesystem writer, the state directory, the stack file and the host facts doctor reads."""
