"""pytest plugin of the seatgate conformance kit (loaded through the pytest11 entry point)."""
