"""Test support code: Debian binaries, local images, fakes. Not shipped with the package."""
