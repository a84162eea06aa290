"""Canonical JSON is RFC 8785 (JCS): its own examples, its refusals, and the format versions."""

import json
import math
import random
import struct

import pytest
import rfc8785

from kumiai.domain import keys
from kumiai.domain.agreement import AGREEMENT_VERSION, SignedAgreement
from kumiai.domain.budget import SPEND_VERSION, SpendRecord, parse_log, record_line
from kumiai.domain.canonical import canonical_json, load_json, require_version
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, UnsupportedVersion
from kumiai.domain.ledger import VERSION, Entry, SignedEntry, TreeHead, sign_entry, sign_head
from tests.conftest import signed

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_numbers_are_written_as_rfc_8785_appendix_b(bits: str, expected: str) -> None:
    assert canonical_json(_double(bits)) == expected.encode()
    assert canonical_json({"n": [_double(bits)]}) == f'{{"n":[{expected}]}}'.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused_naming_where(bits: str) -> None:
    """Appendix B's NaN and Infinity rows: an error, never a silent null."""
    with pytest.raises(InvalidInput, match=r"\$\.metrics\.auc is .*no NaN or Infinity"):
        canonical_json({"job": "j", "metrics": {"auc": _double(bits), "loss": 0.5}})


def test_the_section_3_2_2_example_is_reproduced() -> None:
    """RFC 8785 §3.2.2: parsed, then written canonically, byte for byte."""
    parsed = load_json(
        r"""{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"""
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(parsed) == expected.encode("utf-8")


def test_keys_are_sorted_by_utf16_code_units_as_in_section_3_2_3() -> None:
    """RFC 8785 §3.2.3: the emoji (a surrogate pair, D83D) sorts before U+FB33."""
    properties = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    written = json.loads(canonical_json(properties))  # a dict keeps the order it was read in
    assert list(written.values()) == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_floats_that_python_and_javascript_write_alike() -> None:
    assert canonical_json([0.1 + 0.2, 1e21, 1e-7, 100.0, -0.0, 1e16]) == (
        b"[0.30000000000000004,1e+21,1e-7,100,0,10000000000000000]"
    )


def test_integers_beyond_a_doubles_precision_are_refused() -> None:
    assert canonical_json({"n": 2**53 - 1}) == b'{"n":9007199254740991}'
    with pytest.raises(InvalidInput, match=r"\$\.seeds\[1\] is 9007199254740992.*as a string"):
        canonical_json({"seeds": [1, 2**53]})


@pytest.mark.parametrize(
    ("value", "named"),
    [({1: "a"}, "keys must be strings"), ({"s": "\ud800"}, "lone surrogate"), (b"x", "bytes")],
)
def test_what_json_cannot_hold_is_refused(value: object, named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        canonical_json(value)


def test_the_fast_path_writes_exactly_what_rfc8785_writes() -> None:
    """Float-free values with ASCII keys skip rfc8785 for speed; the bytes must not change."""
    rng = random.Random(8785)
    alphabet = [chr(c) for c in range(0x80)] + ["é", "€", "\u2028", "😀", "\ufb33", "\ue000"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))

    def value(depth: int) -> object:
        roll = rng.randrange(8 if depth < 3 else 5)
        if roll == 0:
            return text()
        if roll == 1:
            return rng.randrange(-(2**53) + 1, 2**53)
        if roll == 2:
            return rng.choice([True, False, None])
        if roll == 3:
            return rng.randrange(-5, 5)
        if roll == 4:
            return ""
        if roll in (5, 6):
            return {
                "".join(rng.choice(alphabet[:128]) for _ in range(rng.randrange(1, 5))): value(
                    depth + 1
                )
                for _ in range(rng.randrange(4))
            }
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    for _ in range(3000):
        sample = value(0)
        assert canonical_json(sample) == rfc8785.dumps(sample), sample


def test_load_json_reads_numbers_as_any_jcs_reader_does() -> None:
    assert load_json('{"n": 12345678901234567890}')["n"] == 1.2345678901234567e19
    assert canonical_json(load_json("[9007199254740993]")) == b"[9007199254740992]"
    assert math.copysign(1, load_json("-0.0")) == -1 and canonical_json(load_json("-0.0")) == b"0"
    for text in ("NaN", "[Infinity]", '{"x": -Infinity}', "1e400", "-1e999"):
        with pytest.raises(ValueError):
            load_json(text)


# -- format versions ---------------------------------------------------------------------
def test_require_version_names_the_type_and_both_versions() -> None:
    with pytest.raises(UnsupportedVersion) as older:
        require_version({"type": "kumiai.x", "version": 1}, "kumiai.x", 2, what="w", fix="Fix.")
    assert str(older.value) == (
        "w is kumiai.x version 1, written by an older kumiai; this kumiai reads only version 2, "
        "signed as RFC 8785 canonical JSON. Fix."
    )
    with pytest.raises(UnsupportedVersion, match=r"version 3, written by a newer kumiai.*Upgrade"):
        require_version({"type": "kumiai.x", "version": 3}, "kumiai.x", 2, what="w", fix="Fix.")
    with pytest.raises(ValueError, match=r"not a kumiai.x"):
        require_version({"type": "kumiai.y", "version": 2}, "kumiai.x", 2, what="w", fix="")
    require_version({"type": "kumiai.x", "version": 2.0}, "kumiai.x", 2, what="w", fix="")


def test_every_signed_format_is_at_version_2() -> None:
    assert VERSION == AGREEMENT_VERSION == SPEND_VERSION == 2


def _downgraded(text: str, type_: str) -> str:
    new = f'"type":"{type_}","version":2'
    assert new in text
    return text.replace(new, f'"type":"{type_}","version":1')


def test_an_older_ledger_entry_or_head_is_refused_by_name() -> None:
    key = keys.new_private_key()
    entry = sign_entry(Entry(0, utc_now(), "lab", "project.closed", {"project": "p"}), key)
    old = _downgraded(entry.leaf_bytes().decode(), "kumiai.ledger-entry")
    with pytest.raises(UnsupportedVersion, match=r"kumiai.ledger-entry version 1.*only version 2"):
        SignedEntry.from_leaf_bytes(old)
    head = sign_head(TreeHead(1, "ab" * 32, utc_now()), key)
    with pytest.raises(UnsupportedVersion, match=r"kumiai.tree-head version 1.*older kumiai"):
        TreeHead.from_json(_downgraded(head.to_json(), "kumiai.tree-head"))
    assert SignedEntry.from_leaf_bytes(entry.leaf_bytes()) == entry


def test_an_older_agreement_is_refused_by_name(steward_key) -> None:
    text = signed(steward_key).to_json()
    with pytest.raises(UnsupportedVersion, match=r"agreement agr-1 is kumiai.agreement version 1"):
        SignedAgreement.from_json(_downgraded(text, "kumiai.agreement"))


def test_an_older_spend_log_is_refused_by_name(steward_key) -> None:
    record = SpendRecord(0, "reserve", "job-1", "heart", 1.0, 1e-5, 0, {"rounds": 3})
    line = record_line(record, keys.sign(steward_key, canonical_json(record.document())))
    public = keys.public_key_b64(steward_key)
    [parsed] = parse_log([line], lambda message, sig: keys.verify(public, message, sig))
    assert parsed == record
    with pytest.raises(UnsupportedVersion, match=r"spend log line 1 is kumiai.spend version 1"):
        parse_log([_downgraded(line, "kumiai.spend")], lambda message, sig: True)


def test_strict_readers_refuse_fields_that_were_not_signed() -> None:
    entry = sign_entry(
        Entry(0, utc_now(), "lab", "project.closed", {"project": "p"}), keys.new_private_key()
    )
    doc = json.loads(entry.leaf_bytes())
    doc["entry"]["note"] = "added later"
    with pytest.raises(InvalidInput, match=r"malformed.*exactly the fields"):
        SignedEntry.from_leaf_bytes(json.dumps(doc))
    doc["entry"].pop("note")
    doc["entry"]["seq"] = 0.5
    with pytest.raises(InvalidInput, match=r"malformed.*whole number"):
        SignedEntry.from_leaf_bytes(json.dumps(doc))
    doc["entry"]["seq"] = 0.0  # the same number as 0, and the same canonical bytes
    assert SignedEntry.from_leaf_bytes(json.dumps(doc)) == entry


def test_a_leaf_is_the_canonical_json_of_entry_signature_and_fingerprint() -> None:
    """leaf_bytes assembles the leaf around the signed bytes; it must equal JCS of the whole."""
    payload = {"purpose": "診断支援", "epsilon": 0.1 + 0.2, "order": {"😀": 1, "\ue000": 2}}
    entry = sign_entry(
        Entry(7, utc_now(), "lab", "project.proposed", payload), keys.new_private_key()
    )
    whole = {
        "entry": entry.entry.document(),
        "signature": entry.signature,
        "key_fingerprint": entry.key_fingerprint,
    }
    assert entry.leaf_bytes() == canonical_json(whole) == rfc8785.dumps(whole)
    parsed = SignedEntry.from_leaf_bytes(entry.leaf_bytes())
    assert parsed.leaf_bytes() == entry.leaf_bytes() and parsed.message() == entry.message()
