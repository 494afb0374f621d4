"""Integration tests on a real Apache Druid (a package, so its conftest does not shadow tests/conftest.py)."""
