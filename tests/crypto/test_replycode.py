"""Reply codes (FORMAT.md section 4): check digit, normalisation, secrecy of repr, derivation."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_scalarmult_base
from nacl.pwhash import argon2id as nacl_argon2id

from crypto._errors import ReplyCodeError, ReplyCodeFormatError, ReplyCodeTypoError
from crypto._kdf import Argon2Params
from crypto._replycode import (
    MAILBOX_PERSON,
    MAX_REPLY_CODE_INPUT,
    REPLY_CODE_PARAMS_V1,
    TIPSTER_PERSON,
    MailboxKeys,
    ReplyCode,
    damm_check_digit,
    damm_is_valid,
    derive_mailbox,
    parse_reply_code,
)

# A fixed code (its 24th digit is the Damm check digit of the first 23) and the spec's sizes.
KNOWN_CODE = "314159265358979323846260"
KNOWN_SALT = bytes(range(16))
KNOWN_PEPPER = bytes(range(32, 64))
# Computed once with REPLY_CODE_PARAMS_V1 and committed: if these change, every tipster loses their mailbox.
KNOWN_MAILBOX_ID_HEX = "fa06a5117573f40bba68ae8ee56a56b2e751fc04580ad49e69e564c81c3979ca"
KNOWN_TIPSTER_PUBLIC_HEX = "74628aa929bacaf2737e4effab7aacd5693b5738e55fad1b8a7d0b9bcdd74b55"
KNOWN_TIPSTER_RECIPIENT = "age1w33g42ffht90yum7fml6k74v645nk4ecu4066xu2059ehnwhfd2sflhg9s"

SAMPLE_CODES = [
    KNOWN_CODE,
    "000000000000000000000000",
    "999999999999999999999999",
    "123456789012345678901238",
    "907856341290785634129073",
]

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + value) for value in range(10)))

NOISE = [
    " ",
    "\t",
    "\n",
    "\u00a0",  # no-break space
    "\u2009",  # thin space
    "\u202f",  # narrow no-break space
    "\u3000",  # ideographic space
    "-",
    "\u2010",
    "\u2011",
    "\u2012",
    "\u2013",  # en dash
    "\u2014",
    "\u2015",
    "\u2212",  # minus sign
    "\ufe63",
    "\uff0d",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",  # LRM
    "\u200f",  # RLM
    "\u061c",  # ALM
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",  # LRI
    "\u2067",  # RLI
    "\u2068",  # FSI
    "\u2069",  # PDI
    "\ufeff",
]


def test_damm_matches_published_example() -> None:
    # Damm's worked example (as on Wikipedia): 572 -> check digit 4.
    assert damm_check_digit("572") == "4"
    assert damm_is_valid("5724")
    assert not damm_is_valid("5723")
    assert damm_check_digit("0") == "0"


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_sample_codes_are_valid(code: str) -> None:
    assert damm_is_valid(code)
    assert parse_reply_code(code).digits == code


def test_damm_helpers_refuse_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        damm_check_digit("12a")
    with pytest.raises(ValueError):
        damm_check_digit("")
    with pytest.raises(ValueError):
        damm_check_digit("١٢٣")
    assert not damm_is_valid("")
    assert not damm_is_valid("\u0660")  # ARABIC-INDIC DIGIT ZERO


def test_generated_codes_always_validate() -> None:
    for _ in range(2000):
        code = ReplyCode.generate()
        assert re.fullmatch(r"[0-9]{24}", code.digits)
        assert damm_is_valid(code.digits)
        assert parse_reply_code(code.grouped()) == code


def test_generated_codes_use_every_digit_in_every_random_position() -> None:
    # 1000 codes: a digit missing from a position by chance has probability 0.9**1000 < 1e-45.
    seen: list[set[str]] = [set() for _ in range(23)]
    for _ in range(1000):
        for position, digit in enumerate(ReplyCode.generate().digits[:23]):
            seen[position].add(digit)
    assert all(digits == set("0123456789") for digits in seen)


def test_grouped_shows_six_groups_of_four() -> None:
    code = ReplyCode(KNOWN_CODE)
    assert code.grouped() == "3141 5926 5358 9793 2384 6260"
    assert re.fullmatch(r"[0-9]{4}( [0-9]{4}){5}", ReplyCode.generate().grouped())


@pytest.mark.parametrize(
    "typed",
    [
        "3141 5926 5358 9793 2384 6260",
        "3141-5926-5358-9793-2384-6260",
        "3141\u20135926\u20135358\u20139793\u20132384\u20136260",
        "3141\u00a05926\u00a05358\u00a09793\u00a02384\u00a06260",
        "  314159265358979323846260\n",
        "\u200f3141 5926\u200e 5358\u061c 9793 \u2067 2384 6260\u2069",
        "\u2066" + "3141 5926 5358 9793 2384 6260" + "\u2069",
        "\ufeff3141\u200b5926\u200d5358\u202b9793\u202c2384\u22126260",
        KNOWN_CODE.translate(ARABIC_INDIC),
        "٣١٤١ ٥٩٢٦ ٥٣٥٨ ٩٧٩٣ ٢٣٨٤ ٦٢٦٠",
        "\u200f٣١٤١-٥٩٢٦-٥٣٥٨-٩٧٩٣-٢٣٨٤-٦٢٦٠\u200f",  # noqa: RUF001 (Arabic-Indic digits, on purpose)
        KNOWN_CODE.translate(PERSIAN),
        "۳۱۴۱ ۵۹۲۶ ۵۳۵۸ ۹۷۹۳ ۲۳۸۴ ۶۲۶۰",
        KNOWN_CODE.translate(DEVANAGARI),
        KNOWN_CODE.translate(FULLWIDTH),
        "3141 5926 5358 " + "9793 2384 6260".translate(PERSIAN),
    ],
)
def test_typed_variants_normalise_to_the_same_code(typed: str) -> None:
    assert parse_reply_code(typed) == ReplyCode(KNOWN_CODE)
    assert parse_reply_code(typed).digits == KNOWN_CODE


@settings(max_examples=200)
@given(
    noise=st.lists(st.lists(st.sampled_from(NOISE), max_size=3), min_size=25, max_size=25),
    scripts=st.lists(st.sampled_from([None, ARABIC_INDIC, PERSIAN, DEVANAGARI, FULLWIDTH]), min_size=24),
)
def test_any_digit_script_and_separator_noise_normalise(
    noise: list[list[str]], scripts: list[dict[int, str] | None]
) -> None:
    typed = "".join(noise[0])
    for digit, script, after in zip(KNOWN_CODE, scripts, noise[1:], strict=False):
        typed += (digit.translate(script) if script else digit) + "".join(after)
    assert parse_reply_code(typed).digits == KNOWN_CODE


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "    ",
        "3141 5926 5358 9793 2384 626",  # 23 digits
        "3141 5926 5358 9793 2384 62600",  # 25 digits
        "31415926535897932384626",
        "3141592653589793238462600",
        "3141 5926 5358 9793 2384 626O",  # letter O for zero
        "3141 5926 5358 9793 2384 626l",
        "l141 5926 5358 9793 2384 6260",
        "3141 5926 5358 9793 2384 6260 x",
        "3141 5926 5358 9793 2384 6260\U0001f600",  # emoji
        "\U0001f5dd\ufe0f 3141 5926 5358 9793 2384 6260",
        "3141.5926.5358.9793.2384.6260",  # full stop is not separator noise
        "3141_5926_5358_9793_2384_6260",
        "3141/5926/5358/9793/2384/6260",
        "3141 5926 5358 9793 2384 626\u00b2",  # superscript two is No, not Nd
        "3141 5926 5358 9793 2384 626\u2460",  # circled digit one
        "3141 5926 5358 9793 2384 626\u216b",  # roman numeral
        "3141 5926 5358 9793 2384 626\u0660\u0301",  # combining mark
        "3141 5926 5358 9793 2384 6260\x00",
        "5" * 10_000,
        " " * 10_000,
        KNOWN_CODE + " " * 10_000,
    ],
)
def test_malformed_input_is_a_format_error(typed: str) -> None:
    with pytest.raises(ReplyCodeFormatError) as raised:
        parse_reply_code(typed)
    assert KNOWN_CODE[:8] not in str(raised.value)


def test_input_length_cap_counts_characters_not_digits() -> None:
    spaces = MAX_REPLY_CODE_INPUT - len(KNOWN_CODE)
    assert parse_reply_code(KNOWN_CODE + " " * spaces).digits == KNOWN_CODE
    with pytest.raises(ReplyCodeFormatError):
        parse_reply_code(KNOWN_CODE + " " * (spaces + 1))


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_every_single_digit_substitution_is_a_typo_error(code: str) -> None:
    substitutions = 0
    for position in range(24):
        for digit in "0123456789":
            if digit == code[position]:
                continue
            typo = code[:position] + digit + code[position + 1 :]
            with pytest.raises(ReplyCodeTypoError):
                parse_reply_code(typo)
            with pytest.raises(ReplyCodeTypoError):
                ReplyCode(typo)
            substitutions += 1
    assert substitutions == 24 * 9


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_every_adjacent_transposition_is_a_typo_error(code: str) -> None:
    for position in range(23):
        if code[position] == code[position + 1]:
            continue
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        with pytest.raises(ReplyCodeTypoError):
            parse_reply_code(swapped)


@settings(max_examples=300)
@given(body=st.text(alphabet="0123456789", min_size=23, max_size=23), position=st.integers(0, 22))
def test_adjacent_transpositions_of_random_codes_are_caught(body: str, position: int) -> None:
    code = body + damm_check_digit(body)
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    if swapped == code:
        assert parse_reply_code(swapped).digits == code
    else:
        with pytest.raises(ReplyCodeTypoError):
            parse_reply_code(swapped)


def test_format_and_typo_errors_are_reply_code_errors_without_the_digits() -> None:
    typo = KNOWN_CODE[:-1] + "1"
    with pytest.raises(ReplyCodeError) as raised:
        parse_reply_code(typo)
    assert isinstance(raised.value, ReplyCodeTypoError)
    assert typo not in str(raised.value)
    assert typo not in repr(raised.value)


def test_constructor_is_strict() -> None:
    with pytest.raises(ReplyCodeFormatError):
        ReplyCode("3141 5926 5358 9793 2384 6260")
    with pytest.raises(ReplyCodeFormatError):
        ReplyCode(KNOWN_CODE.translate(ARABIC_INDIC))
    with pytest.raises(ReplyCodeFormatError):
        ReplyCode(KNOWN_CODE[:-1])


def test_repr_and_str_do_not_show_the_digits() -> None:
    code = ReplyCode(KNOWN_CODE)
    for shown in (repr(code), str(code), f"{code}", f"{code!r}", repr([code])):
        for group in code.grouped().split():
            assert group not in shown


def test_equality_is_by_value_and_codes_are_not_hashable() -> None:
    assert ReplyCode(KNOWN_CODE) == ReplyCode(KNOWN_CODE)
    assert ReplyCode(KNOWN_CODE) != ReplyCode(SAMPLE_CODES[1])
    assert ReplyCode(KNOWN_CODE) != KNOWN_CODE
    with pytest.raises(TypeError):
        hash(ReplyCode(KNOWN_CODE))


def test_pinned_constants_match_format_md() -> None:
    assert (REPLY_CODE_PARAMS_V1.name, REPLY_CODE_PARAMS_V1.opslimit, REPLY_CODE_PARAMS_V1.memlimit) == (
        "replycode-v1",
        2,
        64 * 1024 * 1024,
    )
    assert MAILBOX_PERSON == b"lykta/mailbox/v1"
    assert TIPSTER_PERSON == b"lykta/tipster/v1"
    assert len(MAILBOX_PERSON) == len(TIPSTER_PERSON) == 16


def test_known_answer_at_v1_params() -> None:
    keys = derive_mailbox(ReplyCode(KNOWN_CODE), instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER)
    assert keys.mailbox_id.hex() == KNOWN_MAILBOX_ID_HEX
    assert bytes(keys.tipster_identity.recipient).hex() == KNOWN_TIPSTER_PUBLIC_HEX
    assert str(keys.tipster_identity.recipient) == KNOWN_TIPSTER_RECIPIENT


def test_derivation_follows_format_md_step_by_step(fast_argon2: Argon2Params) -> None:
    # An independent reading of FORMAT.md section 4: libsodium Argon2id, then stdlib keyed BLAKE2b.
    master = nacl_argon2id.kdf(
        32,
        KNOWN_CODE.encode("ascii"),
        KNOWN_SALT,
        opslimit=fast_argon2.opslimit,
        memlimit=fast_argon2.memlimit,
    )
    mailbox_id = hashlib.blake2b(master, digest_size=32, key=KNOWN_PEPPER, person=b"lykta/mailbox/v1")
    seed = hashlib.blake2b(master, digest_size=32, key=KNOWN_PEPPER, person=b"lykta/tipster/v1").digest()

    keys = derive_mailbox(
        parse_reply_code("٣١٤١ ٥٩٢٦ ٥٣٥٨ ٩٧٩٣ ٢٣٨٤ ٦٢٦٠"),
        instance_salt=KNOWN_SALT,
        pepper=KNOWN_PEPPER,
        params=fast_argon2,
    )
    assert keys.mailbox_id == mailbox_id.digest()
    assert keys.tipster_identity.secret_bytes() == seed
    assert bytes(keys.tipster_identity.recipient) == crypto_scalarmult_base(seed)


def _outputs(keys: MailboxKeys) -> tuple[bytes, bytes]:
    return keys.mailbox_id, bytes(keys.tipster_identity.recipient)


def test_salt_pepper_and_code_each_change_both_outputs(fast_argon2: Argon2Params) -> None:
    code = ReplyCode(KNOWN_CODE)
    base = _outputs(derive_mailbox(code, instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2))
    assert base == _outputs(
        derive_mailbox(code, instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2)
    )
    variants = [
        derive_mailbox(code, instance_salt=bytes(16), pepper=KNOWN_PEPPER, params=fast_argon2),
        derive_mailbox(code, instance_salt=KNOWN_SALT, pepper=bytes(32), params=fast_argon2),
        derive_mailbox(
            ReplyCode(SAMPLE_CODES[1]), instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2
        ),
    ]
    for variant in variants:
        mailbox_id, recipient = _outputs(variant)
        assert mailbox_id != base[0]
        assert recipient != base[1]


def test_mailbox_id_and_tipster_key_are_unrelated(fast_argon2: Argon2Params) -> None:
    keys = derive_mailbox(
        ReplyCode(KNOWN_CODE), instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2
    )
    assert keys.mailbox_id != keys.tipster_identity.secret_bytes()
    assert keys.mailbox_id != bytes(keys.tipster_identity.recipient)
    assert len(keys.mailbox_id) == 32


def test_params_are_used(fast_argon2: Argon2Params) -> None:
    cheap = derive_mailbox(
        ReplyCode(KNOWN_CODE), instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2
    )
    assert cheap.mailbox_id.hex() != KNOWN_MAILBOX_ID_HEX


@pytest.mark.parametrize(
    ("salt_size", "pepper_size"), [(15, 32), (17, 32), (0, 32), (16, 31), (16, 33), (16, 0)]
)
def test_wrong_salt_or_pepper_size_is_a_value_error(
    salt_size: int, pepper_size: int, fast_argon2: Argon2Params
) -> None:
    with pytest.raises(ValueError):
        derive_mailbox(
            ReplyCode(KNOWN_CODE),
            instance_salt=bytes(salt_size),
            pepper=bytes(pepper_size),
            params=fast_argon2,
        )


def test_mailbox_keys_repr_hides_everything(fast_argon2: Argon2Params) -> None:
    keys = derive_mailbox(
        ReplyCode(KNOWN_CODE), instance_salt=KNOWN_SALT, pepper=KNOWN_PEPPER, params=fast_argon2
    )
    shown = repr(keys) + str(keys) + f"{keys}" + repr([keys])
    assert keys.mailbox_id.hex() not in shown
    assert keys.mailbox_id.hex()[:8] not in shown
    assert str(keys.tipster_identity.recipient) not in shown
    assert keys.tipster_identity.secret_bytes().hex()[:8] not in shown
    assert KNOWN_CODE[:8] not in shown
