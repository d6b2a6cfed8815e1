"""Wire structs: round trips, canonical decoding, signatures over TBS encodings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peertap.sidecar.mls import structs as s
from peertap.sidecar.mls.errors import DecodeError, EncodeError
from peertap.sidecar.mls.suites import get_suite

VECTORS = Path(__file__).resolve().parents[1] / "data" / "mls-vectors"
SUITE = get_suite(2)  # ECDSA: variable-length signatures
SIG_PRIV, SIG_PUB = SUITE.generate_signature_key_pair()
CAPABILITIES = s.Capabilities(versions=(1,), cipher_suites=(2,), credentials=(1,))


def _leaf(source: int = s.LeafNodeSource.KEY_PACKAGE) -> s.LeafNode:
    return s.LeafNode(
        encryption_key=SUITE.generate_hpke_key_pair()[1],
        signature_key=SIG_PUB,
        credential=s.Credential.basic(b"alice"),
        capabilities=CAPABILITIES,
        leaf_node_source=source,
        lifetime=s.Lifetime(0, 2**64 - 1) if source == s.LeafNodeSource.KEY_PACKAGE else None,
        parent_hash=b"ph" if source == s.LeafNodeSource.COMMIT else b"",
    )


def _key_package() -> s.KeyPackage:
    leaf = _leaf().signed(SUITE, SIG_PRIV)
    return s.KeyPackage(1, SUITE.id, SUITE.generate_hpke_key_pair()[1], leaf).signed(
        SUITE, SIG_PRIV
    )


def test_vectors_given_as_lists_become_tuples() -> None:
    assert s.Capabilities(versions=[1]).versions == (1,)  # type: ignore[arg-type]
    assert s.Commit(proposals=[]) == s.Commit(proposals=())  # type: ignore[arg-type]


def test_key_package_round_trips_and_verifies() -> None:
    key_package = _key_package()
    decoded = s.KeyPackage.decode(key_package.encode())
    assert decoded == key_package
    assert decoded.verify_signature(SUITE)
    assert decoded.leaf_node.verify_signature(SUITE)
    assert decoded.ref(SUITE) == SUITE.make_key_package_ref(key_package.encode())


def test_key_package_signature_covers_the_init_key() -> None:
    key_package = _key_package()
    forged = replace(key_package, init_key=SUITE.generate_hpke_key_pair()[1])
    assert not forged.verify_signature(SUITE)


@pytest.mark.parametrize("source", [s.LeafNodeSource.UPDATE, s.LeafNodeSource.COMMIT])
def test_update_and_commit_leaves_sign_group_id_and_leaf_index(source: int) -> None:
    leaf = _leaf(source).signed(SUITE, SIG_PRIV, b"group", 3)
    decoded = s.LeafNode.decode(leaf.encode())
    assert decoded.verify_signature(SUITE, b"group", 3)
    assert not decoded.verify_signature(SUITE, b"group", 4)
    assert not decoded.verify_signature(SUITE, b"other", 3)


def test_key_package_leaf_signature_ignores_group_and_index() -> None:
    leaf = _leaf().signed(SUITE, SIG_PRIV)
    assert leaf.tbs(b"group", 3) == leaf.tbs()
    assert leaf.verify_signature(SUITE, b"group", 3)


def test_key_package_leaf_without_lifetime_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError):
        replace(_leaf(), lifetime=None).encode()


def test_group_info_signature_round_trip() -> None:
    context = s.GroupContext(1, SUITE.id, b"group", 4, b"tree", b"cth", (s.Extension(5, b""),))
    info = s.GroupInfo(context, (), b"tag", 0).signed(SUITE, SIG_PRIV)
    decoded = s.GroupInfo.decode(s.MLSMessage(info).encode()[4:])
    assert decoded == info
    assert decoded.verify_signature(SUITE, SIG_PUB)
    assert not replace(decoded, signer=1).verify_signature(SUITE, SIG_PUB)


def test_welcome_and_group_secrets_round_trip() -> None:
    psk = s.PreSharedKeyID.external(b"id", b"nonce")
    secrets = s.GroupSecrets(b"joiner", b"path", (psk,))
    assert s.GroupSecrets.decode(secrets.encode()) == secrets
    assert s.GroupSecrets.decode(s.GroupSecrets(b"joiner").encode()).path_secret is None
    welcome = s.Welcome(
        SUITE.id,
        (s.EncryptedGroupSecrets(b"ref", s.HPKECiphertext(b"kem", b"ct")),),
        b"encrypted group info",
    )
    message = s.MLSMessage.decode(s.MLSMessage(welcome).encode())
    assert message.body == welcome
    assert message.wire_format == s.WireFormat.WELCOME


def test_every_proposal_type_round_trips_inside_a_commit() -> None:
    bodies: list[s.ProposalBody] = [
        s.Add(_key_package()),
        s.Update(_leaf(s.LeafNodeSource.UPDATE).signed(SUITE, SIG_PRIV, b"g", 0)),
        s.Remove(7),
        s.PreSharedKey(s.PreSharedKeyID.resumption(1, b"g", 3, b"n")),
        s.ReInit(b"g2", 1, 3, (s.Extension(1, b"app"),)),
        s.ExternalInit(b"kem"),
        s.GroupContextExtensions(
            (s.Extension(3, s.RequiredCapabilities((5,), (), (1,)).encode()),)
        ),
    ]
    proposals = [s.ProposalOrRef(proposal=s.Proposal(body)) for body in bodies]
    proposals.append(s.ProposalOrRef(reference=b"r" * 32))
    path = s.UpdatePath(
        _leaf(s.LeafNodeSource.COMMIT).signed(SUITE, SIG_PRIV, b"g", 0),
        (s.UpdatePathNode(b"pk", (s.HPKECiphertext(b"k", b"c"),)),),
    )
    commit = s.Commit(tuple(proposals), path)
    decoded = s.Commit.decode(commit.encode())
    assert decoded == commit
    assert [p.proposal.proposal_type for p in decoded.proposals if p.proposal] == list(range(1, 8))


def test_proposal_or_ref_needs_exactly_one_of_its_fields() -> None:
    with pytest.raises(ValueError):
        s.ProposalOrRef()
    with pytest.raises(ValueError):
        s.ProposalOrRef(proposal=s.Proposal(s.Remove(1)), reference=b"r")


def test_ratchet_tree_keeps_blanks() -> None:
    tree = s.RatchetTree((_leaf(), None, _leaf(), s.ParentNode(b"pk", b"ph", (2,))))
    decoded = s.RatchetTree.decode(tree.encode())
    assert decoded == tree
    assert decoded.nodes[1] is None


def test_member_public_message_needs_a_membership_tag() -> None:
    framed = s.FramedContent(b"g", 0, s.Sender.member(0), b"", s.Proposal(s.Remove(1)))
    message = s.PublicMessage(framed, s.FramedContentAuthData(b"sig"))
    with pytest.raises(EncodeError):
        message.encode()


def test_extension_payloads_round_trip() -> None:
    senders = s.ExternalSenders((s.ExternalSender(SIG_PUB, s.Credential.x509((b"der",))),))
    assert s.ExternalSenders.decode(senders.encode()) == senders
    assert s.ExternalPub.decode(s.ExternalPub(b"pub").encode()).external_pub == b"pub"
    assert s.ApplicationId.decode(s.ApplicationId(b"id").encode()).application_id == b"id"


def test_decoded_structs_remember_their_exact_encoding() -> None:
    key_package = _key_package()
    encoded = key_package.encode()
    decoded = s.KeyPackage.decode(encoded)
    assert decoded.__dict__["_encoding"] == encoded
    assert replace(decoded, signature=b"x").encode() != encoded


@pytest.mark.parametrize(
    ("struct", "data", "error"),
    [
        (s.MLSMessage, "0001000900", "wire format 9"),
        (s.Sender, "05", "sender type 5"),
        (s.Credential, "000300", "credential type 3"),
        (s.Proposal, "0008", "proposal type 8"),
        (s.ProposalOrRef, "03", "ProposalOrRefType 3"),
        (s.RatchetTree, "020103", "node type 3"),
        (s.GroupSecrets, "0002", "presence byte 2"),
        (s.FramedContent, "00" + "00" * 8 + "01" + "00000000" + "00" + "04", "content type 4"),
    ],
)
def test_unknown_selectors_are_decode_errors(struct: type[s.Struct], data: str, error: str) -> None:
    with pytest.raises(DecodeError, match=error):
        struct.decode(bytes.fromhex(data))


def _message_samples() -> list[tuple[str, str]]:
    case = json.loads((VECTORS / "messages.json").read_text())[0]
    return [(name, case[name]) for name in ("mls_key_package", "mls_welcome", "commit")]


@pytest.mark.parametrize(("name", "data"), _message_samples())
def test_every_truncation_of_a_message_is_a_decode_error(name: str, data: str) -> None:
    struct = s.Commit if name == "commit" else s.MLSMessage
    encoded = bytes.fromhex(data)
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            struct.decode(encoded[:cut])
    with pytest.raises(DecodeError):
        struct.decode(encoded + b"\x00")


_bytes = st.binary(max_size=40)
_extensions = st.lists(st.builds(s.Extension, st.integers(0, 0xFFFF), _bytes), max_size=3)


@given(
    st.builds(
        s.GroupContext,
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        _bytes,
        st.integers(0, 2**64 - 1),
        _bytes,
        _bytes,
        _extensions,
    )
)
def test_group_context_round_trips(context: s.GroupContext) -> None:
    assert s.GroupContext.decode(context.encode()) == context


@given(
    st.builds(s.ParentNode, _bytes, _bytes, st.lists(st.integers(0, 2**32 - 1), max_size=5)),
    st.builds(s.HPKECiphertext, _bytes, _bytes),
)
def test_tree_structs_round_trip(parent: s.ParentNode, ciphertext: s.HPKECiphertext) -> None:
    assert s.ParentNode.decode(parent.encode()) == parent
    assert s.HPKECiphertext.decode(ciphertext.encode()) == ciphertext
