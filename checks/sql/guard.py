"""The read-only guard: parse one statement, verify its tree, and render exactly what was verified.

What reaches the driver is sqlglot's rendering of the verified tree, never the author's text, so anything
the server could read differently from the parser (executable or hint comments, Unicode-escaped names, a
second statement hiding in a T-SQL batch) either never reaches it or is refused outright with a message
naming the construct. The guard checks structure only: one SELECT/WITH built from constructs it knows,
no variables, hints, locking or INTO. Which relations, functions and types a statement may use is the
allow-list's job (checks/sql/allow.py), so that one parse serves both and the result is cached.

It is one of three layers (docs/databases.md, "Threat model"): every check also runs in its own read-only
transaction that is always rolled back and verified afterwards, and the monitoring account has read
grants only (deploy/db-grants/).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

# Also importable from here; they live in checks/sql/verdicts.py so that code that only names them need not load sqlglot.
from checks.sql.verdicts import ALLOW_DIALECT as ALLOW_DIALECT
from checks.sql.verdicts import SQLGLOT_DIALECTS as SQLGLOT_DIALECTS
from checks.sql.verdicts import GuardError as GuardError
from checks.sql.verdicts import Name as Name
from checks.sql.verdicts import Verified as Verified

_sqlglot_log = logging.getLogger("sqlglot")
_sqlglot_log.setLevel(logging.WARNING)
_sqlglot_log.propagate = False
"""sqlglot reports what it could not parse properly as warnings quoting the statement; statements may carry
patient data, so its records never reach the agent's log. The guard listens instead and refuses the
statement (a parse with warnings is a parse that cannot be trusted)."""


class _Warnings(logging.Handler):
    """Collects sqlglot's warnings per thread while the guard parses."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        seen = getattr(self.local, "seen", None)
        if seen is not None:
            seen.append(record.levelname)


_warnings = _Warnings()
_sqlglot_log.addHandler(_warnings)


@contextmanager
def _listening() -> Iterator[list[str]]:
    seen: list[str] = []
    _warnings.local.seen = seen
    try:
        yield seen
    finally:
        _warnings.local.seen = None


_STATEMENT_WORDS: frozenset[str] = frozenset(
    ["ALTER", "BACKUP", "BEGIN", "BREAK", "BULK", "CALL", "CHECKPOINT", "CLOSE", "COMMIT", "CONTINUE", "COPY", "CREATE", "DBCC", "DEALLOCATE", "DECLARE", "DELETE", "DENY", "DISABLE", "DO", "DROP", "ENABLE", "EXEC", "EXECUTE", "FETCH", "GO", "GOTO", "GRANT", "HANDLER", "IF", "INSERT", "KILL", "LOAD", "LOCK", "MERGE", "OPEN", "PREPARE", "PRINT", "RAISERROR", "READTEXT", "RECONFIGURE", "RENAME", "REPLACE", "RESTORE", "RETURN", "REVERT", "REVOKE", "ROLLBACK", "SAVE", "SELECT", "SET", "SETUSER", "SHUTDOWN", "THROW", "TRUNCATE", "UNLOCK", "UPDATE", "UPDATETEXT", "USE", "VACUUM", "WAITFOR", "WHILE", "WRITETEXT"]
)
"""Words that start a statement. Unquoted, where the parser saw a name (`SELECT 1 DELETE FROM t` reads as
an alias to sqlglot and as a second statement to SQL Server), they are refused: the statement is
ambiguous, whatever the rendering would quote."""

_KEYWORD_COLUMNS: dict[str, frozenset[str]] = {
    "postgres": frozenset({"current_user", "session_user", "user", "current_role", "current_schema",
                           "current_catalog", "current_date", "current_time", "current_timestamp", "localtime",
                           "localtimestamp"}),
    "mysql": frozenset({"current_user", "current_date", "current_time", "current_timestamp", "localtime",
                        "localtimestamp", "utc_date", "utc_time", "utc_timestamp"}),
    "oracle": frozenset({"ROWNUM", "ROWID", "LEVEL", "SYSDATE", "SYSTIMESTAMP", "USER", "UID", "ORA_ROWSCN",
                         "CONNECT_BY_ISLEAF", "CONNECT_BY_ISCYCLE", "COLUMN_VALUE", "OBJECT_VALUE", "CURRENT_DATE",
                         "CURRENT_TIMESTAMP", "LOCALTIMESTAMP", "SESSIONTIMEZONE", "DBTIMEZONE"}),
    "tsql": frozenset({"current_user", "session_user", "system_user", "user", "current_timestamp"}),
}
"""Pseudo-columns and niladic keywords the parser keeps as column names: rendered unquoted, since quoting
`ROWNUM` or `current_user` would turn them into references to ordinary columns."""

_ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE, exp.From, exp.Join,
        exp.Lateral, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.LimitOptions,
        exp.Offset, exp.Fetch, exp.Window, exp.WindowSpec, exp.Filter, exp.Distinct, exp.Values, exp.Tuple,
        exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Dot, exp.Paren,
        exp.Literal, exp.Null, exp.Boolean, exp.National, exp.HexString, exp.BitString, exp.Interval,
        exp.IntervalSpan, exp.DataType, exp.DataTypeParam, exp.ObjectIdentifier, exp.Var, exp.SessionParameter,
        exp.Case, exp.Between, exp.In, exp.Is, exp.Like, exp.ILike, exp.Not, exp.Neg, exp.Any, exp.All,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Add, exp.Sub,
        exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor,
        exp.BitwiseNot, exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.Array, exp.Bracket, exp.Collate,
        exp.Escape, exp.Connect, exp.Prior, exp.Rollup, exp.Cube, exp.GroupingSets, exp.WithTableHint,
        exp.Pseudocolumn, exp.Slice, exp.Kwarg,
    }
)
"""Every construct a query may be built from, besides function calls (whose names the allow-list checks).
Anything else is refused by name: the list can be extended when a real patrol query needs it, but an
unknown construct never runs."""

_REFUSED_NAMES: dict[type[exp.Expression], str] = {
    exp.Into: "SELECT ... INTO",
    exp.Lock: "a locking clause (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE)",
    exp.Hint: "an optimizer hint",
    exp.TableSample: "TABLESAMPLE (its sampling method is a function)",
    exp.Version: "a flashback or temporal query (AS OF / VERSIONS / FOR SYSTEM_TIME)",
    exp.QueryOption: "a query OPTION (...) clause",
    exp.PropertyEQ: "a variable assignment (:=)",
    exp.Parameter: "a variable or parameter (@name, $1)",
    exp.Placeholder: "a bind placeholder",
    exp.UnicodeString: "a Unicode-escaped string (U&'...')",
    exp.RawString: "a raw string literal",
    exp.IndexTableHint: "an index hint",
    exp.NextValueFor: "NEXT VALUE FOR (advances a sequence)",
    exp.Command: "a statement the parser does not know as a query",
}

_SAFE_TABLE_HINTS = frozenset({"NOLOCK", "READUNCOMMITTED", "NOWAIT"})
"""SQL Server table hints that only lower the locks a read takes."""
_XML_METHODS = frozenset({"value", "query", "exist", "nodes"})
_CALL_HEAD = re.compile(r'^\s*((?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$#]*)(?:\s*\.\s*(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$#]*))*)\s*\(')


def check_statement(sql: str, dialect: str) -> None:
    """Raise GuardError unless `sql` is one statement the guard can verify and render (structure only)."""
    verify(sql, dialect)


def verify(sql: str, dialect: str) -> Verified:
    """The verified rendering of `sql` with the names it reads and calls; raises GuardError naming why not.

    Cached per (sql, dialect), refusals included, so a check that runs every minute parses once.
    """
    outcome = _verify_cached(sql, dialect)
    if isinstance(outcome, str):
        raise GuardError(outcome)
    return outcome


@lru_cache(maxsize=4096)
def _verify_cached(sql: str, dialect: str) -> Verified | str:
    try:
        return _verify(sql, dialect)
    except GuardError as exc:
        return str(exc)


def _verify(sql: str, dialect: str) -> Verified:
    read = SQLGLOT_DIALECTS.get(dialect)
    if read is None:
        raise GuardError(f"unknown dialect {dialect!r}")
    _check_comments(sql, read)
    root = _parse_one(sql, read, dialect)
    _check_structure(root, read)
    rendered = _render(root, read)
    again = _parse_one(rendered, read, dialect)
    if _render(again, read) != rendered:
        raise GuardError("the statement does not render stably; refusing what cannot be sent as checked")
    # Names from both trees: anything the rendering itself introduced is checked as what the server will read.
    return Verified(sql=rendered,
                    relations=frozenset((*_relations(root, read), *_relations(again, read))),
                    functions=frozenset((*_functions(root, read), *_functions(again, read))),
                    types=frozenset((*_types(root, read), *_types(again, read))))


def _check_comments(sql: str, read: str) -> None:
    """Refuse comments the server executes or obeys: MySQL/MariaDB `/*! */`, `/*M! */`, and `/*+ */` hints."""
    try:
        tokens = Dialect.get_or_raise(read).tokenize(sql)
    except SqlglotError:
        raise GuardError("cannot read the statement's tokens (an unterminated string or comment?)") from None
    for i, token in enumerate(tokens):
        if (token.text in ("U", "u") and i + 2 < len(tokens) and tokens[i + 1].token_type.name == "AMP"
                and tokens[i + 1].start == token.end + 1 and tokens[i + 2].start == tokens[i + 1].end + 1):
            raise GuardError("refused: a Unicode-escaped name (U&\"...\"); write the name itself")
        for comment in token.comments:
            text = comment.lstrip()
            if text.startswith("!") or text.startswith("M!"):
                raise GuardError("refused: an executable comment (/*! ... */); the server would run its contents")
            if text.startswith("+"):
                raise GuardError("refused: an optimizer hint comment (/*+ ... */)")
        if token.token_type.name == "UNICODE_STRING":
            raise GuardError("refused: a Unicode-escaped string (U&'...')")


def _parse_one(sql: str, read: str, dialect: str) -> exp.Expr:
    with _listening() as warnings:
        try:
            statements = [s for s in sqlglot.parse(sql, read=read, error_level=ErrorLevel.RAISE) if s is not None]
        except SqlglotError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            first = re.sub(r"\.\s*Line \d+.*", "", first)
            raise GuardError(f"cannot parse as {dialect} SQL ({first}); only statements the guard understands run") from None
    if len(statements) != 1:
        raise GuardError(f"expected exactly one statement, found {len(statements)}")
    root = statements[0]
    if not isinstance(_unwrap(root), exp.Query):
        raise GuardError(f"only SELECT/WITH may run, not {_first_word(sql, read)}")
    if warnings:
        raise GuardError(f"the {dialect} parser could not read the statement fully (it warned); refusing rather than guessing")
    return root


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Subquery):
        node = node.this
    return node


def _first_word(sql: str, read: str) -> str:
    """The statement's first keyword (VACUUM, EXEC, SHUTDOWN), to name what was refused without echoing it."""
    tokens = Dialect.get_or_raise(read).tokenize(sql)
    word = tokens[0].text.upper() if tokens else ""
    return word if re.fullmatch(r"[A-Z_]{1,30}", word) else "a statement of another kind"


def _check_structure(root: exp.Expr, read: str) -> None:
    for n in root.walk():
        cls = type(n)
        if isinstance(n, exp.Parameter) and read == "tsql" and _tsql_global(n):
            continue
        if cls in _REFUSED_NAMES:
            raise GuardError(f"refused: {_REFUSED_NAMES[cls]}")
        if isinstance(n, (exp.DML, exp.DDL)):
            raise GuardError("refused: data modification or DDL (INSERT/UPDATE/DELETE/MERGE/COPY/CREATE...)")
        if isinstance(n, exp.Identifier):
            _check_identifier(n, read)
        elif isinstance(n, exp.Table):
            _check_table(n, read)
        elif isinstance(n, exp.WithTableHint):
            hints = {h.sql(dialect=read).upper() for h in n.expressions}
            bad = sorted(hints - _SAFE_TABLE_HINTS)
            if bad:
                raise GuardError(f"refused: table hint {', '.join(bad)} (only {', '.join(sorted(_SAFE_TABLE_HINTS))})")
        elif isinstance(n, exp.Column) and read == "oracle" and n.name.upper() in ("NEXTVAL", "CURRVAL"):
            raise GuardError("refused: sequence NEXTVAL/CURRVAL")
        elif isinstance(n, exp.Func):
            if isinstance(n, exp.Anonymous) and "@" in _anonymous_name(n):
                raise GuardError("refused: a function over a database link (name@link)")
        elif cls not in _ALLOWED_NODES:
            raise GuardError(f"refused: {_construct(n)} is not a construct the read-only guard allows")


def _tsql_global(node: exp.Parameter) -> bool:
    """`@@SPID`, `@@VERSION`, `@@TRANCOUNT`: SQL Server's read-only system functions (a nested parameter)."""
    outer = node if isinstance(node.this, exp.Parameter) else node.parent
    if not isinstance(outer, exp.Parameter) or not isinstance(outer.this, exp.Parameter):
        return False
    name = outer.this.this
    return isinstance(name, exp.Var) and re.fullmatch(r"[A-Za-z_]+", name.name) is not None


def _check_identifier(node: exp.Identifier, read: str) -> None:
    name = node.name
    if "@" in name and read == "oracle":
        raise GuardError("refused: a database link (name@link)")
    if not node.quoted and name.upper() in _STATEMENT_WORDS:
        raise GuardError(f"refused: {name.upper()} where a name belongs reads as a second statement; quote it if it is a name")


def _check_table(node: exp.Table, read: str) -> None:
    if len(node.parts) > 3:
        raise GuardError("refused: a four-part name (a linked server)")
    if node.args.get("version") is not None:
        raise GuardError(f"refused: {_REFUSED_NAMES[exp.Version]}")


def _construct(node: exp.Expr) -> str:
    """A readable name for a construct: the sqlglot class in words (JSONExtract -> json extract)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", type(node).__name__).lower()
    return f"'{words}'"


def _render(root: exp.Expr, read: str) -> str:
    """Identifiers normalized as the server folds them, then all quoted; comments dropped."""
    tree = root.copy()
    if read in ("postgres", "oracle"):
        tree = normalize_identifiers(tree, dialect=read)
    keywords = _KEYWORD_COLUMNS[read]
    for ident in tree.find_all(exp.Identifier):
        parent = ident.parent
        if isinstance(parent, exp.SessionParameter):
            if ident.quoted or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident.name):
                raise GuardError("refused: a system variable name that is not a plain word")
            continue  # @@max_connections: a system variable, named as the server spells it
        bare = (not ident.quoted and isinstance(parent, exp.Column) and parent.this is ident
                and not parent.table and _keyword(ident.name, read) in keywords)
        ident.set("quoted", not bare)
    try:
        return tree.sql(dialect=read, comments=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise GuardError(f"cannot render the statement in its dialect ({str(exc).splitlines()[0]})") from None


def _keyword(name: str, read: str) -> str:
    return name.upper() if read == "oracle" else name.lower()


# --- names as the server resolves them --------------------------------------------------------------------------

def canonical(name: str, quoted: bool, read: str) -> str:
    """One name part as the server compares it: folded unless quoted (PostgreSQL, Oracle), case-blind otherwise."""
    if read == "postgres":
        return name if quoted else name.lower()
    if read == "oracle":
        return name if quoted else name.upper()
    return name.lower()


def _ident_parts(node: exp.Expr, read: str) -> list[str] | None:
    """The name parts of an Identifier/Column/Dot chain (`a.b.c`), or None if it is not a plain name."""
    if isinstance(node, exp.Identifier):
        return [canonical(node.name, bool(node.quoted), read)]
    if isinstance(node, exp.Column):
        parts: list[str] = []
        for part in node.parts:
            if not isinstance(part, exp.Identifier):
                return None
            parts.append(canonical(part.name, bool(part.quoted), read))
        return parts
    if isinstance(node, exp.Dot):
        left = _ident_parts(node.this, read)
        right = _ident_parts(node.expression, read)
        return None if left is None or right is None else left + right
    if isinstance(node, exp.Var):
        return [canonical(node.name, False, read)]
    return None


def _relations(root: exp.Expr, read: str) -> Iterator[Name]:
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a function in FROM (unnest, generate_series, a DMF): checked as a function
        if _is_cte_reference(table):
            continue
        yield tuple(canonical(p.name, bool(p.quoted), read) for p in table.parts if isinstance(p, exp.Identifier))


def _is_cte_reference(table: exp.Table) -> bool:
    """True only when an enclosing WITH certainly defines this unqualified name before the reference.

    Scoping as the servers do it: a CTE is visible in the query it belongs to and in the CTEs after it (and in
    itself only under WITH RECURSIVE), never outside its WITH; anything else is a real relation.
    """
    if table.args.get("db") or table.args.get("catalog"):
        return False
    name = table.name.lower()
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.Query):
            with_ = node.args.get("with_")
            if (isinstance(with_, exp.With) and child is not with_
                    and any(c.alias_or_name.lower() == name for c in with_.expressions)):
                return True
        elif isinstance(node, exp.With) and isinstance(child, exp.CTE):
            ctes = list(node.expressions)
            index = next(i for i, c in enumerate(ctes) if c is child)
            visible = ctes[: index + (1 if node.args.get("recursive") else 0)]
            if any(c.alias_or_name.lower() == name for c in visible):
                return True
        child = node
        node = node.parent
    return False


def _functions(root: exp.Expr, read: str) -> Iterator[Name]:
    aliases = {a.lower() for a in _source_aliases(root)}
    for func in root.find_all(exp.Func):
        name = _function_name(func, read, aliases)
        if name is not None:
            yield name


def _source_aliases(root: exp.Expr) -> Iterator[str]:
    for alias in root.find_all(exp.TableAlias):
        if alias.name:
            yield alias.name


def _function_name(func: exp.Func, read: str, aliases: set[str]) -> Name | None:
    """The name the server will call, with its qualifier; None for syntax the server does not call as a function."""
    if isinstance(func, exp.Anonymous):
        this = func.this
        if isinstance(this, exp.Identifier):
            own = canonical(this.name, bool(this.quoted), read)
        else:
            own = canonical(str(this), False, read)
    else:
        head = _call_head(func, read)
        if head is None:
            return None
        own = canonical(head, False, read)
    parent = func.parent
    qualifier: list[str] = []
    if isinstance(parent, exp.Dot) and parent.expression is func:
        parts = _ident_parts(parent.this, read)
        if parts is None:
            return ("(expression).",)  # a method called on an expression: never on an allow-list
        qualifier = parts
    elif isinstance(parent, exp.Table) and parent.this is func:
        qualifier = [canonical(p.name, bool(p.quoted), read) for p in parent.parts[:-1] if isinstance(p, exp.Identifier)]
    if read == "tsql" and len(qualifier) >= 2 and qualifier[0] in aliases and own.lower() in _XML_METHODS:
        return (f"xml:{own.lower()}",)
    return (*qualifier, own)


def _call_head(func: exp.Func, read: str) -> str | None:
    """The called name of a typed function as rendered (NVL, LEN, CAST), or None when it renders as an
    operator or keyword (`a -> 'b'`, CASE, CURRENT_TIMESTAMP): syntax, not a call."""
    text = func.sql(dialect=read, comments=False)
    head = _CALL_HEAD.match(text)
    if head is None:
        return None
    for child in func.iter_expressions():
        rendered = child.sql(dialect=read, comments=False)
        if rendered and text.startswith(rendered):
            return None
    return head.group(1).split(".")[-1].strip('"`[]')


def _anonymous_name(func: exp.Anonymous) -> str:
    this = func.this
    return this.name if isinstance(this, exp.Identifier) else str(this)


def _types(root: exp.Expr, read: str) -> Iterator[Name]:
    for node in root.find_all(exp.DataType, exp.ObjectIdentifier):
        if isinstance(node, exp.ObjectIdentifier):
            yield (canonical(node.name, False, read),)
        elif node.this == exp.DataType.Type.USERDEFINED:
            kind = node.args.get("kind")
            parts = _ident_parts(kind, read) if isinstance(kind, exp.Expression) else None
            yield tuple(parts) if parts else (canonical(str(kind), False, read),)
