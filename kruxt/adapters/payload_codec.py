"""Encrypting every Temporal payload: ticket text never sits in workflow history in the clear.

AES-256-GCM (``cryptography``'s ``AESGCM``), a random 96-bit nonce per payload, the shape of
samples-python's ``encryption/codec.py``: the encrypted payload carries
``encoding: binary/encrypted`` and ``encryption-key-id: <id>`` in its metadata and
``nonce || ciphertext || tag`` as its data.

Keys rotate: payloads are encrypted with the current key (``KRUXT_PAYLOAD_KEY``) and decrypted
with whichever known key their id names (the current one or a retired one from
``KRUXT_PAYLOAD_OLD_KEYS``). A key's id is derived from the key itself (the first 16 hex digits
of SHA-256 over a labelled key), so nobody has to keep ids and keys in step; it reveals nothing
usable about a 256-bit key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_FIELD = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


class PayloadKeyError(ValueError):
    """A payload key is malformed, or a payload names a key this process does not have."""


class PayloadDecryptionError(ValueError):
    """A payload failed authentication: it was altered, or encrypted under another key."""


def parse_key(text: str) -> bytes:
    """A 32-byte key from 64 hex digits or (URL-safe or standard) base64.

    Raises:
        PayloadKeyError: the text is neither, or is not 32 bytes long.
    """
    text = text.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise PayloadKeyError(
            f"a payload key must be {KEY_BYTES} random bytes as 64 hex digits or base64 "
            "(generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return raw


def key_id_of(key: bytes) -> str:
    """The id written next to every payload encrypted with ``key``."""
    return hashlib.sha256(b"kruxt-payload-key-id\x00" + key).hexdigest()[:16]


def generate_key() -> str:
    """A new key in the form ``KRUXT_PAYLOAD_KEY`` takes (64 hex digits)."""
    return os.urandom(KEY_BYTES).hex()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over every payload; decrypts under the current or any retired key."""

    def __init__(self, key: bytes, *, old_keys: Sequence[bytes] = ()) -> None:
        """``key`` encrypts and decrypts; ``old_keys`` only decrypt (history written before a
        rotation)."""
        if len(key) != KEY_BYTES or any(len(k) != KEY_BYTES for k in old_keys):
            raise PayloadKeyError(f"payload keys are {KEY_BYTES} bytes")
        self.key_id = key_id_of(key)
        self._current = AESGCM(key)
        self._keys = {key_id_of(k): AESGCM(k) for k in old_keys}
        self._keys[self.key_id] = self._current

    @classmethod
    def from_settings_text(cls, key: str, old_keys: str | None = None) -> EncryptionCodec:
        """A codec from ``KRUXT_PAYLOAD_KEY`` and the comma-separated ``KRUXT_PAYLOAD_OLD_KEYS``."""
        old = [parse_key(k) for k in (old_keys or "").split(",") if k.strip()]
        return cls(parse_key(key), old_keys=old)

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of every key this codec decrypts with."""
        return frozenset(self._keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each whole payload (metadata included) with the current key."""
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID_FIELD: self.key_id.encode()},
                data=self._encrypt(p.SerializeToString()),
            )
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; others (history from before encryption) pass through.

        Raises:
            PayloadKeyError: a payload names a key id this process does not know.
            PayloadDecryptionError: a payload's ciphertext or tag was altered.
        """
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_FIELD, b"").decode(errors="replace")
        aead = self._keys.get(key_id)
        if aead is None:
            raise PayloadKeyError(
                f"payload encrypted with unknown key id {key_id!r}; this process knows "
                f"{sorted(self._keys)}: add the retired key to KRUXT_PAYLOAD_OLD_KEYS"
            )
        data = payload.data
        try:
            plain = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise PayloadDecryptionError(
                f"payload under key {key_id} failed authentication (altered or truncated)"
            ) from exc
        return Payload.FromString(plain)

    def _encrypt(self, data: bytes) -> bytes:
        # A fresh random nonce per payload: with 96 bits, 2^32 payloads per key stay far
        # below the collision bound NIST SP 800-38D sets for random nonces.
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._current.encrypt(nonce, data, None)
