"""The HTTP API (``seatgate serve``): entitlement checks for the CTI and the embedded experiences,
and the CLI's administration for admin tools, per account, behind bearer tokens.

- :mod:`.app` — the FastAPI app: one route per operation, one service call each;
- :mod:`.auth` — tokens, roles, account isolation, rate limits;
- :mod:`.middleware` — request ids, body cap, timeouts, metrics, JSON request log lines;
- :mod:`.problems` — errors as ``application/problem+json``;
- :mod:`.metrics`, :mod:`.logs`, :mod:`.settings`, :mod:`.server` (uvicorn).

See ``docs/http.md``.
"""
