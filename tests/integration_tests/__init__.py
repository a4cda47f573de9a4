"""Tests against the real API (skipped without ``ACEDATACLOUD_API_TOKEN``) and the simulator."""
