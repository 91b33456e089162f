"""The binding line: a ciphertext moved to another row, tip or purpose does not open."""

from __future__ import annotations

import pytest

import crypto

DESK = crypto.X25519Identity.generate()


def test_sealed_plaintext_opens_for_its_own_kind_and_subject() -> None:
    envelope = crypto.seal(b"answers", kind="tip", subject="tip-1", recipients=[DESK.recipient])
    assert crypto.unseal(envelope, kind="tip", subject="tip-1", identities=[DESK]) == b"answers"


@pytest.mark.parametrize(("kind", "subject"), [("tip", "tip-2"), ("note", "tip-1"), ("tip", "tip-10")])
def test_moved_ciphertext_is_rejected(kind: str, subject: str) -> None:
    envelope = crypto.seal(b"answers", kind="tip", subject="tip-1", recipients=[DESK.recipient])
    with pytest.raises(crypto.BindingError):
        crypto.unseal(envelope, kind=kind, subject=subject, identities=[DESK])


def test_unbound_plaintext_is_rejected() -> None:
    envelope = crypto.encrypt(b"no binding line here", [DESK.recipient])
    with pytest.raises(crypto.BindingError):
        crypto.unseal(envelope, kind="tip", subject="tip-1", identities=[DESK])


def test_streamed_binding_split_across_chunks() -> None:
    line = crypto.binding_line("file", "tip-1:f-2")
    pieces = [line[:3], line[3:9], line[9:] + b"rest", b" more"]
    assert b"".join(crypto.strip_binding(pieces, kind="file", subject="tip-1:f-2")) == b"rest more"
    with pytest.raises(crypto.BindingError):
        b"".join(crypto.strip_binding(pieces, kind="file", subject="tip-1:f-3"))


def test_binding_grammar_is_enforced() -> None:
    for kind, subject in [("Tip", "x"), ("tip", "a b"), ("tip", ""), ("t" * 33, "x"), ("tip", "x\n")]:
        with pytest.raises(ValueError):
            crypto.binding_line(kind, subject)
