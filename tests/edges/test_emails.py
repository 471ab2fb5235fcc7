"""Email syntax (tester report item 8): a malformed address is refused with one line, exit 2,
nothing written — never stored as an identity of its own beside the well-formed one. The rule is
one function, :func:`seatgate.core.domain.bounds.check_email`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.domain.vocabulary import normalize_email
from seatgate.core.errors import BadInput

from .harness import assert_one_line_refusal, cli, dump, ok

# The tester's list, and more of the kind.
MALFORMED = [
    "a@@b.com",
    "a@b..com",
    "<a@x.com>",
    "a,b@x.com",
    "a;b@x.com",
    "a@x.com.",
    "a@-x.com",
    "a@x-.com",
    "a@x.c",
    ".a@x.com",
    "a.@x.com",
    "a..b@x.com",
    "a@b",
    "a b@x.com",
    "a@x_y.com",
    "a@[127.0.0.1]",
    '"a"@x.com',
    "a(b)@x.com",
    "a:b@x.com",
    "a\\b@x.com",
    "a@.x.com",
    "@x.com",
    "a@",
    "a@x.123",
    "a@x..com",
    "a@" + "x" * 64 + ".com",  # a label of 64
]
WELL_FORMED = [
    "a@x.com",
    "first.last+tag@sub.example.co.uk",
    "o'brien@x.io",
    "andré@example.com",
    "x@a-b.example",
    "a@1.example.com",
    "a@xn--bcher-kva.example",
    "a@" + "x" * 63 + ".com",
]


@pytest.mark.parametrize("email", MALFORMED)
def test_a_malformed_address_is_refused(email: str) -> None:
    with pytest.raises(BadInput) as refused:
        normalize_email(email)
    assert repr(email) in str(refused.value) and "name@example.com" in str(refused.value)


@pytest.mark.parametrize("email", WELL_FORMED)
def test_a_well_formed_address_is_accepted(email: str) -> None:
    assert normalize_email(email) == email.lower()


def test_users_add_refuses_each_malformed_address_and_writes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    ok(db, "account", "create", "acme", "--region", "US")
    for email in MALFORMED:
        before = dump(db)
        code, out, err = cli(db, "users", "add", "acme", email)
        line = assert_one_line_refusal(code, out, err, as_json=False)
        assert "bad email" in str(line)
        assert dump(db) == before, email


_ATEXT = st.sampled_from("abcxyz019!#$%&'*+/=?^_`{|}~-")
_ATOM = st.text(_ATEXT, min_size=1, max_size=8)
_LOCAL = st.lists(_ATOM, min_size=1, max_size=3).map(".".join)
_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)


@given(_ADDRESS)
def test_every_dot_atom_at_a_hostname_is_accepted(email: str) -> None:
    assert normalize_email(email) == email


@given(
    _ADDRESS,
    st.sampled_from(["<", ">", ",", ";", ":", "@", "[", "]", "(", ")", '"', "\\", " ", "\x00"]),
    st.integers(min_value=0),
)
def test_a_forbidden_character_anywhere_is_refused(email: str, bad: str, where: int) -> None:
    at = 1 + where % (len(email) - 1)  # inside: blanks around an address are stripped
    with pytest.raises(BadInput):
        normalize_email(email[:at] + bad + email[at:])


@given(_ADDRESS, st.sampled_from([".", ".."]))
def test_a_stray_dot_is_refused(email: str, dot: str) -> None:
    local, _, domain = email.partition("@")
    for broken in (
        dot + email,
        f"{local}{dot}@{domain}",
        f"{local}@{dot}{domain}",
        email + dot,
        f"{local}..x@{domain}",
        f"{local}@x..{domain}",
    ):
        with pytest.raises(BadInput):
            normalize_email(broken)


def test_a_capital_dotted_i_lowers_to_i_and_a_decomposed_accent_is_the_composed_one() -> None:
    """``İ`` (U+0130) had lowered to ``i`` and a combining dot, which the syntax refuses: a CRM
    user ``İlker@...`` was quarantined as a bad email. ``é`` typed as ``e`` + U+0301 is ``é``."""
    assert normalize_email("İlker@Example.com") == "ilker@example.com"
    assert normalize_email("Jose\u0301@example.com") == normalize_email("José@example.com")
    assert normalize_email("josé@example.com") == "jos\u00e9@example.com"


def test_no_capital_letter_makes_an_address_refused_whose_lower_case_is_taken() -> None:
    """The kind, over every capital letter Unicode has: an address is matched case-insensitively
    (seed 000), so writing a letter in capitals never turns a good address into a bad one, and
    its key is already in lower case. (Lower case is Unicode's, context and all: a final capital sigma
    is a final sigma.)"""
    import sys
    import unicodedata

    capitals = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Lu"]
    assert len(capitals) > 1000
    for capital in capitals:
        lower = unicodedata.normalize("NFC", capital).lower()
        try:
            normalize_email(f"a{lower}b@example.com")
        except BadInput:
            continue  # a letter the syntax does not take in either case
        key = normalize_email(f"a{capital}b@example.com")
        assert key == normalize_email(key) == key.lower(), hex(ord(capital))
