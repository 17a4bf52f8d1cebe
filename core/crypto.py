"""Secrets at rest: Fernet encryption with the keys in COUNTERSIGN_ENCRYPTION_KEYS.

A stored value is ``PREFIX`` + a Fernet token (AES-128-CBC + HMAC-SHA256, random IV, a
timestamp). The first key encrypts; every key in the list decrypts, so rotation is: put a new
key first, keep the old one, re-encrypt (``manage.py rotate_encryption_keys``), drop the old one.

Without COUNTERSIGN_ENCRYPTION_KEYS (``make run``, tests) the one key is derived from
SECRET_KEY with HKDF-SHA256 (salt ``DERIVED_KEY_SALT``, info ``DERIVED_KEY_INFO``, 32 bytes), so
a database dump still reveals nothing without the environment; settings refuse to start in
production without explicit keys. A value without the prefix is a legacy plaintext value
(written before encryption): it reads as itself, and the rotation command encrypts it.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "enc:v1:"
DERIVED_KEY_SALT = b"countersign"
DERIVED_KEY_INFO = b"countersign encrypted fields v1"


class DecryptionError(Exception):
    """A stored value that no key in COUNTERSIGN_ENCRYPTION_KEYS opens: a wrong or missing key, or a damaged value."""


def generate_key() -> str:
    """A fresh Fernet key (32 random bytes, url-safe base64), for COUNTERSIGN_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def derived_key(secret_key: str) -> str:
    """The key used when COUNTERSIGN_ENCRYPTION_KEYS is unset: HKDF-SHA256 of SECRET_KEY."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=DERIVED_KEY_SALT, info=DERIVED_KEY_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw).decode()


def configured_keys() -> tuple[str, ...]:
    """The keys in use, first (encrypting) key first."""
    keys = tuple(settings.COUNTERSIGN_ENCRYPTION_KEYS)
    return keys or (derived_key(settings.SECRET_KEY),)


@functools.lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, MultiFernet]:
    fernets = [Fernet(key.encode()) for key in keys]
    return fernets[0], MultiFernet(fernets)


def _current() -> tuple[Fernet, MultiFernet]:
    # Keyed on the settings' value, so a test that overrides the keys gets its own ciphers.
    return _fernets(configured_keys())


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt(plaintext: str) -> str:
    """Encrypt with the first key; the result is text (prefix + Fernet token), safe in any text column."""
    _primary, multi = _current()
    return PREFIX + multi.encrypt(plaintext.encode()).decode()


def decrypt(stored: str, *, what: str = "a value") -> str:
    """The plaintext of a stored value; a legacy plaintext value (no prefix) is returned as it is.

    ``what`` names the value in the error (model, field, row) so an operator knows where to look.
    """
    if not is_encrypted(stored):
        return stored
    _primary, multi = _current()
    try:
        return multi.decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            f"{what} cannot be decrypted with any key in COUNTERSIGN_ENCRYPTION_KEYS "
            "(or the key derived from SECRET_KEY when that is unset). Add the key it was encrypted "
            "with to the list (see README, 'Secrets at rest'); the value itself is unchanged."
        ) from None


@dataclass(frozen=True)
class Reencrypted:
    """What ``reencrypt`` did to one stored value: ``stored`` is the value to write (or the same one)."""

    stored: str
    changed: bool
    was_plaintext: bool


def reencrypt(stored: str, *, what: str = "a value") -> Reencrypted:
    """The value under the first key: a legacy plaintext is encrypted, a token under an older key is
    re-encrypted, a token the first key already opens is left as it is (so running it twice changes nothing)."""
    primary, multi = _current()
    if not is_encrypted(stored):
        return Reencrypted(stored=encrypt(stored), changed=True, was_plaintext=True)
    token = stored[len(PREFIX) :].encode()
    try:
        primary.decrypt(token)
        return Reencrypted(stored=stored, changed=False, was_plaintext=False)
    except InvalidToken:
        pass
    try:
        return Reencrypted(stored=PREFIX + multi.rotate(token).decode(), changed=True, was_plaintext=False)
    except InvalidToken:
        decrypt(stored, what=what)  # raises the error that names the value
        raise


def mask(secret: str, *, visible: int = 4) -> str:
    """A secret as the admin shows it: enough to recognise it, never enough to use it.

    A URL keeps its scheme and host (where it goes is not the secret; its path is); any other
    value keeps a ``word_`` prefix such as ``whsec_``. Both keep the last ``visible`` characters.
    """
    if not secret:
        return ""
    head = ""
    scheme, sep, rest = secret.partition("://")
    if sep:
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]  # never the user:password@ part
        head = f"{scheme}://{host}/"
    elif "_" in secret[:12]:
        head = secret[: secret.index("_") + 1]
    tail = secret[-visible:] if len(secret) - len(head) > 3 * visible else ""
    return f"{head}…{tail}"
