"""The conformance kit for seatgate adapters (see conformance.py)."""
