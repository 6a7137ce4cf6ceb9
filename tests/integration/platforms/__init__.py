"""Integration tests of platforms against the real thing (processes, engines)."""
