"""The email rule's cost (tester item 8): ``normalize_email`` now and as of main at 8d52a92 (its
old rule inlined below), per call, median of several runs. A check calls it only for an address
it does not know (a known user is found by its lower-cased text first), so this is the cost of
a ``users add`` per address and of a check for an unknown address.

    .venv/bin/python bench/email_syntax.py
"""

from __future__ import annotations

import statistics
import timeit
import unicodedata

from seatgate.core.domain.bounds import BLANKS, EMAIL_LOCAL_MAX, EMAIL_MAX
from seatgate.core.domain.vocabulary import normalize_email
from seatgate.core.errors import BadInput


def old_normalize_email(value: str) -> str:
    email = value.strip(BLANKS).lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email or domain.startswith("."):
        raise BadInput("email", value, "an address like name@example.com")
    # 8d52a92's check_email_length, with its character-by-character printable test
    printable = not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in email)
    if len(email) > EMAIL_MAX or len(local) > EMAIL_LOCAL_MAX or not printable:
        raise BadInput("email", value, "an address like name@example.com")
    return email


SAMPLES = ["First.Last+tag@sub.example.co.uk", "u1@acme.example", "andré@example.com"]


def per_call(fn: object, number: int = 20_000, repeat: int = 7) -> float:
    runs = timeit.repeat(
        lambda: [fn(s) for s in SAMPLES],  # type: ignore[operator]
        number=number,
        repeat=repeat,
    )
    return statistics.median(runs) / (number * len(SAMPLES)) * 1e6


if __name__ == "__main__":
    print(f"normalize_email now: {per_call(normalize_email):.2f} µs per address (median of 7)")
    print(f"rule of 8d52a92:     {per_call(old_normalize_email):.2f} µs per address (median of 7)")
