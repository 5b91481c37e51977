"""Encryption at rest for partner credentials (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken
from pydantic import AfterValidator, SecretStr


def check_key(key: SecretStr) -> SecretStr:
    """Validate an ENCRYPTION_KEY when settings are read, so a bad one is named at start."""
    try:
        Fernet(key.get_secret_value().encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("must be a url-safe base64 32-byte Fernet key") from exc
    return key


EncryptionKey = Annotated[SecretStr, AfterValidator(check_key)]


class SecretBox:
    """Encrypts secrets before they are stored and decrypts them only where they are used."""

    def __init__(self, key: SecretStr) -> None:
        try:
            self._fernet = Fernet(key.get_secret_value().encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("ENCRYPTION_KEY must be a url-safe base64 32-byte Fernet key") from exc

    def seal(self, secret: str) -> bytes:
        """Ciphertext for storage."""
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> SecretStr:
        """The secret again, wrapped so that it never prints."""
        try:
            return SecretStr(self._fernet.decrypt(sealed).decode())
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with this ENCRYPTION_KEY") from exc
