"""Benchmarks: measured side by side with the reference x402 SDK, in one run, on loopback."""
