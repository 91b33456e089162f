"""Envelopes: round trips, tampering, several recipients, adding recipients, error classes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crypto
from crypto._header import read_header
from crypto._stream import CHUNK_SIZE

ALICE = crypto.X25519Identity.generate()
BOB = crypto.X25519Identity.generate()
MALLORY = crypto.X25519Identity.generate()


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=3 * CHUNK_SIZE + 7), pieces=st.lists(st.integers(1, 70_000), max_size=6))
def test_pushed_in_any_pieces_round_trips(plaintext: bytes, pieces: list[int]) -> None:
    encryptor = crypto.Encryptor([ALICE.recipient])
    out = [encryptor.start()]
    rest = plaintext
    for size in pieces:
        out.append(encryptor.update(rest[:size]))
        rest = rest[size:]
    out += [encryptor.update(rest), encryptor.finalize()]
    assert crypto.decrypt(b"".join(out), [ALICE]) == plaintext


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=2 * CHUNK_SIZE + 3))
def test_stream_and_bytes_apis_agree(plaintext: bytes) -> None:
    sink = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(plaintext), sink, [ALICE.recipient, BOB.recipient])
    for identity in (ALICE, BOB):
        out = io.BytesIO()
        crypto.decrypt_stream(io.BytesIO(sink.getvalue()), out, [identity])
        assert out.getvalue() == plaintext
        assert crypto.decrypt(sink.getvalue(), [MALLORY, identity]) == plaintext


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE])
def test_chunk_boundaries(size: int) -> None:
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    envelope = crypto.encrypt(plaintext, [ALICE.recipient])
    assert crypto.decrypt(envelope, [ALICE]) == plaintext
    # Cutting a whole chunk off the end must never pass for a shorter file.
    if size > CHUNK_SIZE:
        with pytest.raises(crypto.PayloadError):
            crypto.decrypt(envelope[: -((size - CHUNK_SIZE) + 16)], [ALICE])


def test_wrong_identity_is_no_match() -> None:
    envelope = crypto.encrypt(b"x", [ALICE.recipient])
    with pytest.raises(crypto.NoIdentityMatchError):
        crypto.decrypt(envelope, [BOB, MALLORY])


def test_every_single_bit_flip_fails_with_its_stage_class() -> None:
    envelope = crypto.encrypt(b"the red van at Storgatan 4", [ALICE.recipient])
    header_length = len(crypto.split_header(envelope)[0])
    share_line_end = envelope.index(b"\n", len(b"age-encryption.org/v1\n")) + 1
    body_line_end = envelope.index(b"\n", share_line_end) + 1
    for bit in range(len(envelope) * 8):
        tampered = bytearray(envelope)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(crypto.DecryptError) as caught:
            crypto.decrypt(bytes(tampered), [ALICE])
        offset = bit // 8
        error = type(caught.value)
        if offset < share_line_end:
            # Version line, stanza type or ephemeral share: a parse error, or (a share that still decodes)
            # a key that no longer opens the stanza.
            assert error in (crypto.MalformedHeaderError, crypto.NoIdentityMatchError), bit
        elif offset < body_line_end:
            assert error in (crypto.MalformedHeaderError, crypto.NoIdentityMatchError), bit
        elif offset < header_length:
            assert error in (crypto.MalformedHeaderError, crypto.HeaderMACError), bit
        else:
            assert error is crypto.PayloadError, bit
        assert str(caught.value).startswith("could not decrypt")


def test_error_messages_carry_no_plaintext_or_key() -> None:
    envelope = crypto.encrypt(b"CANARY-8841", [ALICE.recipient])
    with pytest.raises(crypto.DecryptError) as caught:
        crypto.decrypt(envelope[:-1], [ALICE])
    text = str(caught.value) + repr(caught.value)
    assert "CANARY" not in text and ALICE.to_text() not in text
    assert ALICE.to_text() not in repr(ALICE)


def test_add_recipients_rewrites_only_the_header() -> None:
    plaintext = b"y" * (CHUNK_SIZE + 10)
    envelope = crypto.encrypt(plaintext, [ALICE.recipient])
    header, payload = crypto.split_header(envelope)
    shared = crypto.add_recipients(envelope, identities=[ALICE], recipients=[BOB.recipient])
    assert shared.endswith(payload)
    assert crypto.decrypt(shared, [BOB]) == plaintext
    assert crypto.decrypt(shared, [ALICE]) == plaintext
    # The header alone, as stored apart from its payload chunks, works the same way.
    new_header = crypto.add_recipients(header, identities=[ALICE], recipients=[MALLORY.recipient])
    assert crypto.decrypt(new_header + payload, [MALLORY]) == plaintext
    assert len(read_header(io.BytesIO(new_header)).stanzas) == 2


def test_add_recipients_needs_an_identity_that_opens_it() -> None:
    envelope = crypto.encrypt(b"z", [ALICE.recipient])
    with pytest.raises(crypto.NoIdentityMatchError):
        crypto.add_recipients(envelope, identities=[MALLORY], recipients=[MALLORY.recipient])


def test_a_forged_stanza_cannot_be_slipped_in() -> None:
    # Appending a stanza without the file key breaks the MAC, so nobody can add themselves unseen.
    envelope = crypto.encrypt(b"z", [ALICE.recipient])
    other = crypto.encrypt(b"z", [MALLORY.recipient])
    alice_header, payload = crypto.split_header(envelope)
    mallory_stanza = crypto.split_header(other)[0].split(b"\n", 1)[1].rsplit(b"---", 1)[0]
    forged = alice_header.rsplit(b"---", 1)[0] + mallory_stanza + b"---" + alice_header.rsplit(b"---", 1)[1]
    with pytest.raises(crypto.HeaderMACError):
        crypto.decrypt(forged + payload, [MALLORY])


def test_hostile_header_size_is_bounded() -> None:
    endless = io.BytesIO(b"age-encryption.org/v1\n-> X25519 " + b"A" * (2 << 20))
    with pytest.raises(crypto.MalformedHeaderError):
        read_header(endless)
    assert endless.tell() <= (1 << 20) + 1


def test_no_recipient_is_refused() -> None:
    with pytest.raises(ValueError):
        crypto.encrypt(b"x", [])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age1",
        "AGE1QQQQ",
        "Age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",  # mixed case
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwk",  # bad checksum
        "age-secret-key-1qqqq",
    ],
)
def test_bad_recipient_text(text: str) -> None:
    with pytest.raises(crypto.KeyFormatError):
        crypto.X25519Recipient.parse(text)


def test_key_text_forms_round_trip() -> None:
    identity = crypto.X25519Identity.generate()
    assert crypto.X25519Identity.parse(identity.to_text()) == identity
    assert crypto.X25519Recipient.parse(str(identity.recipient)) == identity.recipient
    assert str(identity.recipient).startswith("age1")
    assert identity.to_text().startswith("AGE-SECRET-KEY-1")
    with pytest.raises(crypto.KeyFormatError):
        crypto.X25519Identity.parse(identity.to_text().lower())
    with pytest.raises(crypto.KeyFormatError):
        crypto.X25519Identity.parse(str(identity.recipient))


def test_identity_file_format() -> None:
    text = f"# created: now\n# public key: {ALICE.recipient}\n{ALICE.to_text()}\n\n{BOB.to_text()}\n"
    assert crypto.parse_identities(text) == [ALICE, BOB]
    with pytest.raises(crypto.KeyFormatError):
        crypto.parse_identities("# only a comment\n")
