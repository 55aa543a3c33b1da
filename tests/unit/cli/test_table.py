from __future__ import annotations

from xunjian.table import display_width, render


def test_wide_characters_count_double_so_columns_line_up() -> None:
    out = render(["CHECK", "SUMMARY"], [("his.web.login", "登录页正常"), ("x", "ok")]).splitlines()
    assert display_width("登录") == 4
    assert out[1].index("登") == out[2].index("ok")


def test_long_cells_are_cut_with_an_ellipsis_but_the_last_column_is_not() -> None:
    out = render(["A", "B"], [("a" * 100, "b" * 100)], max_width=10).splitlines()
    assert out[1].startswith("a" * 9 + "…")
    assert out[1].endswith("b" * 100)
