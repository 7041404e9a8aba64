"""The one rule for secrets in anything devmetrics prints, logs, stores or raises.

    redact(text) -> str            # every message, log line, stored string and exception text
    redact_url(url) -> str         # one URL: no userinfo, no credential-like query parameter
    split_credentials(url)         # (URL without userinfo, (user, password) or None)
    check_token(value, where)      # a configured token shorter than 8 characters is refused
    remember(value) / watch_env(names)

What counts as a secret:
- the value of every environment variable the config names as holding one (`token_env`,
  `app_private_key_env`, `digest.token_env`, `digest.slack_webhook_env`: `watch_env`), and of
  any variable whose name says so (`*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*PRIVATE_KEY*`,
  `*WEBHOOK*`, `*API_KEY*`, `*CREDENTIAL*`) when the value is 8 characters or longer;
- values handed to `remember` (tokens read by the code, e.g. a GitHub App installation token);
- in any URL: the userinfo (`https://user:secret@host` -> `https://host`) and every query
  parameter whose name says it holds a credential (`token`, `access_token`, `private_token`,
  `key`, `api_key`, `sig`, `signature`, `password`, `secret`, `client_secret`, ...): removed.

A secret value is replaced by `***` where it appears whole: never a part of it, and never when
it is glued to a letter or digit on either side, so that masking cannot mangle ordinary words
("Max retries exceeded" stays as it is whatever the token). A percent escape before it (`%3D`)
still counts as a boundary, and its percent-encoded form is masked too. A configured token
shorter than 8 characters is refused (`check_token`): no real GitHub or GitLab token is that
short, and a short one could not be masked without mangling text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_TOKEN_LENGTH = 8

_SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSW|PRIVATE_KEY|WEBHOOK|API_KEY|CREDENTIAL", re.IGNORECASE)
# Query parameter names that carry a credential (GitLab's private_token, OAuth's
# access_token and client_secret, API keys, signed-URL signatures, ...).
_CREDENTIAL_PARAM = re.compile(
    r"token|secret|passw|pwd|signature|credential|^sig$|^auth(orization)?$|^pass$|(^|[_.-]|api)key$",
    re.IGNORECASE)
# scheme://userinfo@ : the userinfo ends at the first @ before the path, query or fragment.
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/?#\s@'\"<>]*@", re.IGNORECASE)
# A query string: from ? up to a fragment, whitespace or a quote.
_QUERY = re.compile(r"\?([^#\s'\"<>`)]*)")

_remembered: set[str] = set()
_watched: set[str] = set()
_lock = threading.Lock()


# ------------------------------------------------------------------------- configuring

def remember(value: str | None) -> None:
    """Mask `value` from now on (a token the code read or received)."""
    if value and len(value) >= MIN_TOKEN_LENGTH:
        with _lock:
            _remembered.add(value)


def watch_env(names: Iterable[str | None]) -> None:
    """Mask the values of these environment variables, whatever their names say."""
    with _lock:
        _watched.update(name for name in names if name)


def check_token(value: str, where: str) -> str:
    """The token, remembered for masking; ValueError (a config error) when it is too short."""
    if len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{where} holds {len(value)} character{'s' if len(value) != 1 else ''}, "
                         f"which is not a token (real tokens have {MIN_TOKEN_LENGTH} or more)")
    remember(value)
    return value


def secret_values() -> tuple[str, ...]:
    """Every value masked right now, longest first (so a longer secret wins over its prefix)."""
    with _lock:
        found = set(_remembered)
        watched = set(_watched)
    for name, value in os.environ.items():
        if len(value) >= MIN_TOKEN_LENGTH and (name in watched or _SECRET_ENV_NAME.search(name)):
            found.add(value)
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


# ----------------------------------------------------------------------------- masking

def redact(text: str) -> str:
    """`text` without any secret value, URL userinfo or credential query parameter."""
    return redactor()(text)


def redactor() -> Callable[[str], str]:
    """`redact` for the secrets known now: build once, apply to many strings (store writes)."""
    return _redactor(secret_values())


@lru_cache(maxsize=32)
def _redactor(values: tuple[str, ...]) -> Callable[[str], str]:
    forms = {form for value in values for form in (value, quote(value, safe=""))}
    pattern = None
    if forms:
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
        pattern = re.compile(rf"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{{2}}))(?:{alternatives})(?![A-Za-z0-9])")

    def clean(text: str) -> str:
        if "://" in text or "?" in text:
            text = _QUERY.sub(_without_credential_params, _USERINFO.sub(r"\1", text))
        return pattern.sub(MASK, text) if pattern is not None else text
    return clean


def _without_credential_params(found: re.Match[str]) -> str:
    pairs = re.split(r"[&;]", found.group(1))
    kept = [pair for pair in pairs if not _is_credential(pair)]
    if len(kept) == len(pairs):  # a question mark in prose, or a harmless query
        return found.group(0)
    return "?" + "&".join(kept) if kept else ""


def _is_credential(pair: str) -> bool:
    name, equals, _ = pair.partition("=")
    return bool(equals) and is_credential_param(unquote(name))


def is_credential_param(name: str) -> bool:
    """Whether a query parameter of this name carries a credential (`private_token`, `sig`, ...)."""
    return bool(_CREDENTIAL_PARAM.search(name.strip()))


def redact_url(url: str) -> str:
    """One URL fit to print or store: no userinfo, no credential-like query parameter."""
    return redact(url)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without its userinfo, (user, password) from it or None).

    For clients that can send the credentials as HTTP Basic auth instead of in the URL.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    auth = (unquote(user), unquote(password))
    remember(auth[1])
    remember(auth[0] if not auth[1] else None)  # https://TOKEN@host: the user is the secret
    return urlunsplit(parts._replace(netloc=host)), auth


def has_userinfo(url: str) -> bool:
    return "@" in urlsplit(url).netloc


__all__ = ["MASK", "MIN_TOKEN_LENGTH", "check_token", "has_userinfo", "is_credential_param", "redact", "redact_url",
           "redactor", "remember", "secret_values", "split_credentials", "watch_env"]
