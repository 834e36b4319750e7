"""Staff passwords: the rule a new one must meet, and argon2 hashing and checking.

The rule (long enough, not a password attackers try first, not the username) applies wherever a password
is set (`add_user`, so `wecity user add` and the demo city); signing in checks nothing of it, so an older
account with a weaker password can still sign in and be given a new one.

Hashing and checking are slow on purpose (argon2id, tens of milliseconds of CPU): callers that serve
requests run them off the database's threads (`wecity.identity.signin`).
"""

from __future__ import annotations

import functools
import secrets
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from wecity.core.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 200  # argon2 hashes any length; a cap keeps a megabyte "password" from being hashed at all
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt"  # see data/PROVENANCE.md


@functools.cache
def common_passwords() -> frozenset[str]:
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").split())


def check_password(password: str, *, username: str) -> None:
    """Raise ValidationFailed (code `password.weak`) saying what is wrong with a new password."""
    if len(password) < MIN_LENGTH:
        raise _weak(f"the password must be at least {MIN_LENGTH} characters", f"密码至少 {MIN_LENGTH} 位")
    if len(password) > MAX_LENGTH:
        raise _weak(f"the password must be at most {MAX_LENGTH} characters", f"密码不能超过 {MAX_LENGTH} 位")
    lowered = password.lower()
    if lowered in common_passwords():
        raise _weak("this password is one of the most common ones; choose another",
                    "该密码属于最常见的密码，请另选一个")
    name = username.lower()
    if name and (lowered == name or (len(name) >= 4 and name in lowered)):
        raise _weak("the password must not contain the username", "密码不能包含用户名")


def _weak(message: str, message_zh: str) -> ValidationFailed:
    return ValidationFailed(message, message_zh=message_zh, code="password.weak")


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_no_account: list[str] = []
_no_account_lock = threading.Lock()


def _no_account_hash() -> str:
    """A hash nothing matches, made once per process: under a lock, as the first guesses for unknown
    usernames often arrive together and each would otherwise make its own."""
    with _no_account_lock:
        if not _no_account:
            _no_account.append(_hasher.hash(secrets.token_urlsafe(16)))
        return _no_account[0]


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(whether `password` matches the stored hash, a new hash when the stored one used weaker
    parameters than today's). With no stored hash (no such account) the same work is done against a
    hash nothing matches, so the time taken does not tell which usernames exist."""
    try:
        _hasher.verify(stored or _no_account_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None
