"""Create the project's virtualenv with any Python 3.10+, including a stock Debian/Ubuntu/Fedora one.

`python3 -m venv` needs ensurepip, which Debian and Ubuntu ship separately (python3-venv) and leave out of a minimal
install; pip itself refuses to install into the system Python there (PEP 668). So: try `venv` with pip; when
ensurepip is missing, create the environment without pip and install pip from its wheel on PyPI (pip runs from its
own wheel file), checking the wheel's SHA-256 against the digest PyPI publishes. Standard library only.

    python3 scripts/make_venv.py .venv
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path

PYPI = "https://pypi.org/pypi/pip/json"


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return False
    return True


def pip_wheel(directory: Path) -> Path:
    """Download the newest pip wheel from PyPI into `directory`, its digest checked."""
    with urllib.request.urlopen(PYPI, timeout=60) as response:
        release = json.load(response)
        base = response.geturl()
    wheel = next(f for f in release["urls"] if f["packagetype"] == "bdist_wheel")
    target = directory / wheel["filename"]
    url = urllib.parse.urljoin(base, wheel["url"])  # some mirrors answer with relative links
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"the pip wheel downloaded from {url} does not match PyPI's SHA-256")
    target.write_bytes(data)
    return target


def create(env_dir: Path, use_ensurepip: bool | None = None) -> None:
    if sys.version_info < (3, 10):
        raise SystemExit(f"stackctl needs Python 3.10 or newer; {sys.executable} is {sys.version.split()[0]}")
    use_ensurepip = has_ensurepip() if use_ensurepip is None else use_ensurepip
    venv.EnvBuilder(with_pip=use_ensurepip, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    if not use_ensurepip:
        print(f"{sys.executable} has no ensurepip (Debian/Ubuntu: the python3-venv package): installing pip "
              "from PyPI instead", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            wheel = pip_wheel(Path(tmp))
            subprocess.run([str(python), str(wheel / "pip"), "install", "--quiet", "--no-index", str(wheel)],
                           check=True)
    subprocess.run([str(python), "-m", "pip", "--version"], check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or (len(argv) == 2 and argv[1] != "--without-ensurepip"):
        print(__doc__, file=sys.stderr)
        return 2
    create(Path(argv[0]), use_ensurepip=False if len(argv) == 2 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
