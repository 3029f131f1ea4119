"""Simulated relay phones (tests, the demo, benchmarks); never imported by the serving path."""
