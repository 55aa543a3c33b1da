"""SQL text with every literal replaced by ?, so statement texts can leave the host without patient data."""

from __future__ import annotations

import re

from sqlglot import TokenType
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from checks.sql.guard import SQLGLOT_DIALECTS

MAX_LENGTH = 4000
_LITERALS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.NATIONAL_STRING,
        TokenType.BYTE_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.RAW_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.UNICODE_STRING,
    }
)
_FALLBACK_STRING = re.compile(r"(?:[NnEeXxBb]?'(?:[^']|'')*(?:'|$))|(?:\$([A-Za-z_]*)\$.*?(?:\$\1\$|$))", re.DOTALL)
_FALLBACK_DOUBLE = re.compile(r'"(?:[^"\\]|\\.)*"')
_FALLBACK_NUMBER = re.compile(r"(?<![\w$])[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)")
_COMMENTS = re.compile(r"/\*.*?(?:\*/|$)|--[^\n]*", re.DOTALL)


def normalize_sql(text: str, dialect: str) -> str:
    """Literals → ?, comments dropped, whitespace collapsed, capped at MAX_LENGTH characters.

    Texts from pg_stat_activity or v$sql can be cut off mid-literal; when the tokenizer gives up, a
    conservative regex pass masks anything quoted (to the end if unterminated) and every number.
    """
    read = SQLGLOT_DIALECTS.get(dialect, "postgres")
    try:
        out = _by_tokens(text, read)
    except (SqlglotError, ValueError, IndexError):
        out = _by_regex(text, read)
    out = " ".join(out.split())
    return out if len(out) <= MAX_LENGTH else out[: MAX_LENGTH - 3] + "..."


def _by_tokens(text: str, read: str) -> str:
    """Rebuild the text token by token: literals become ?, comments between tokens become one space."""
    tokens = Dialect.get_or_raise(read).tokenize(text)
    out: list[str] = []
    previous = None
    previous_end = -1
    for tok in tokens:
        gap = text[previous_end + 1 : tok.start]
        if gap:
            out.append(" ")
        if tok.token_type in _LITERALS and previous != TokenType.PARAMETER:
            if not gap and out and out[-1] in ("-", "+") and len(out) >= 2 and out[-2].strip() in ("", "(", ",", "=", "<", ">"):
                out.pop()
            out.append("?")
        else:
            out.append(text[tok.start : tok.end + 1])
        previous = tok.token_type
        previous_end = tok.end
    return _collapse_lists("".join(out))


def _by_regex(text: str, read: str) -> str:
    out = _COMMENTS.sub(" ", text)
    out = _FALLBACK_STRING.sub("?", out)
    if read == "mysql":
        out = _FALLBACK_DOUBLE.sub("?", out)
    out = _FALLBACK_NUMBER.sub("?", out)
    return _collapse_lists(out)


def _collapse_lists(text: str) -> str:
    """IN (?, ?, ?) → IN (?...), so one statement with different list lengths normalizes the same."""
    return re.sub(r"\(\s*\?(?:\s*,\s*\?)+\s*\)", "(?...)", text)


_QUOTED = re.compile(r"(?<![A-Za-z])'[^']*'?|\"[^\"]*\"?|`[^`]*`?")
"""A quote that starts a quoted part: not an apostrophe inside a word (Can't)."""


def mask_quoted(text: str) -> str:
    """Server messages (replication errors, archive destination errors) with every quoted part replaced by ?:
    that is where such messages carry values (a duplicate key, a host, a file); codes and words stay."""
    out = _QUOTED.sub("?", text)
    out = " ".join(out.split())
    return out if len(out) <= 300 else out[:297] + "..."
