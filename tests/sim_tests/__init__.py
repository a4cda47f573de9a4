"""Unit tests: the library against the loopback simulator (no token, no network)."""
