"""SQL text leaves the host only with literals replaced: no patient names, ids or phone numbers."""

from __future__ import annotations

import pytest

from checks.sql.normalize import MAX_LENGTH, normalize_sql


@pytest.mark.parametrize(
    ("dialect", "sql", "expect"),
    [
        ("postgres", "SELECT * FROM patient WHERE name = '张三' AND phone = '13800138000'",
         "SELECT * FROM patient WHERE name = ? AND phone = ?"),
        ("postgres", "select * from t where id in (1, 2, 3) and x = -4.5", "select * from t where id in (?...) and x = ?"),
        ("postgres", "SELECT * FROM t WHERE a = $1 AND b = $2", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ("postgres", "SELECT E'abc\\n', $$dollar 'quoted'$$ /* comment 110101199003077777 */ FROM t",
         "SELECT ?, ? FROM t"),
        ("mysql", 'SELECT * FROM t WHERE name = "Li Si" AND id = 42', "SELECT * FROM t WHERE name = ? AND id = ?"),
        ("mysql", "SELECT * FROM t WHERE id IN (?, ?, ?)", "SELECT * FROM t WHERE id IN (?...)"),
        ("mssql", "SELECT * FROM t WHERE a = N'王五' AND b = 0x1F", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("oracle", "SELECT * FROM t WHERE d = DATE '2024-01-01'", "SELECT * FROM t WHERE d = DATE ?"),
    ],
)
def test_literals_become_placeholders(dialect: str, sql: str, expect: str) -> None:
    assert normalize_sql(sql, dialect) == expect


def test_truncated_text_masks_the_unterminated_literal() -> None:
    """pg_stat_activity.query and v$sql texts are cut off mid-literal; nothing after the quote may survive."""
    out = normalize_sql("SELECT * FROM patient WHERE id_card = '11010119900307", "postgres")
    assert "1101" not in out
    assert out.endswith("?")


def test_comments_are_dropped() -> None:
    assert "张三" not in normalize_sql("SELECT 1 -- patient 张三\n FROM t", "postgres")


def test_length_capped() -> None:
    out = normalize_sql("SELECT " + ", ".join(f"c{i}" for i in range(5000)) + " FROM t", "postgres")
    assert len(out) == MAX_LENGTH and out.endswith("...")
