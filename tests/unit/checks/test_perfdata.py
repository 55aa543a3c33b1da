"""Plugin output and perfdata parsing: quoted labels, multi-line output, UOMs, empty fields, bad items."""

from __future__ import annotations

import pytest

from checks.perfdata import PerfDatum, parse_perfdata, parse_plugin_output


def test_nagios_guidelines_multiline_example() -> None:
    out = parse_plugin_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n"
        "/boot 68 MB (69%);\n"
        "/home 69357 MB (27%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414 \n"
        "/var/log=818MB;970;975;0;980\n"
    )
    assert out.summary == "DISK OK - free space: / 3326 MB (56%);"
    assert out.long_text == ["/ 15272 MB (77%);", "/boot 68 MB (69%);", "/home 69357 MB (27%);", "/var/log 819 MB (84%);"]
    assert [p.label for p in out.perfdata] == ["/", "/boot", "/home", "/var/log"]
    root = out.perfdata[0]
    assert root == PerfDatum(label="/", value=2643 * 1024**2, uom="MB", unit="bytes", raw_value="2643MB", warn="5948",
                             crit="5958", min=0.0, max=5968 * 1024**2)
    assert out.metrics()["/var/log"] == 818 * 1024**2
    assert out.problems == []


def test_no_perfdata_and_no_output() -> None:
    assert parse_plugin_output("connect to address 127.0.0.1 and port 1: Connection refused\n").perfdata == []
    empty = parse_plugin_output("")
    assert (empty.summary, empty.perfdata) == ("", [])


def test_long_text_without_perfdata_keeps_all_lines() -> None:
    out = parse_plugin_output("OK - 2 jobs\njob a ok\njob b ok\n")
    assert out.long_text == ["job a ok", "job b ok"]
    assert out.perfdata == []


def test_perfdata_only_on_later_lines() -> None:
    out = parse_plugin_output("OK - fine\nline two\n| a=1 b=2\nc=3")
    assert out.long_text == ["line two"]
    assert out.metrics() == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(("raw", "value", "unit"), [
    ("t=1.5s", 1.5, "seconds"),
    ("t=250ms", 0.25, "seconds"),
    ("t=1500us", 0.0015, "seconds"),
    ("p=99.5%", 99.5, "percent"),
    ("b=512B", 512, "bytes"),
    ("b=2KB", 2048, "bytes"),
    ("b=3MB", 3 * 1024**2, "bytes"),
    ("b=1GB", 1024**3, "bytes"),
    ("b=2TB", 2 * 1024**4, "bytes"),
    ("b=3MiB", 3 * 1024**2, "bytes"),
    ("b=4kB", 4096, "bytes"),
    ("n=12345c", 12345, "counter"),
    ("n=42", 42, ""),
    ("n=-3.5", -3.5, ""),
    ("n=1e3", 1000, ""),
    ("n=0,5", 0.5, ""),
    ("q=7qps", 7, "qps"),
])
def test_units_to_base(raw: str, value: float, unit: str) -> None:
    [datum], problems = parse_perfdata(raw)
    assert problems == []
    assert datum.value == pytest.approx(value)
    assert datum.unit == unit


def test_quoted_labels_with_spaces_and_quotes() -> None:
    data, problems = parse_perfdata("'C:\\ Used Space'=12.5GB;80;90;0;100 'it''s ok'=1 'x y'=2ms;;;;")
    assert problems == []
    assert [d.label for d in data] == ["C:\\ Used Space", "it's ok", "x y"]
    assert data[0].value == 12.5 * 1024**3
    assert data[2].value == pytest.approx(0.002)


def test_empty_and_missing_fields() -> None:
    [full, trailing, short, ranges], problems = parse_perfdata(
        "a=1;;;; b=2;;;0; c=3 procs=0;1:;@5:10;0;")
    assert problems == []
    assert (full.warn, full.crit, full.min, full.max) == ("", "", None, None)
    assert (trailing.min, trailing.max) == (0.0, None)
    assert (short.warn, short.min) == ("", None)
    assert (ranges.warn, ranges.crit, ranges.min) == ("1:", "@5:10", 0.0)


def test_load_output_from_check_load() -> None:
    out = parse_plugin_output("LOAD OK - total load average: 0.12, 0.11, 0.08|load1=0.120;5.000;10.000;0; "
                              "load5=0.110;4.000;8.000;0; load15=0.080;3.000;6.000;0; ")
    assert out.metrics() == {"load1": 0.12, "load5": 0.11, "load15": 0.08}
    assert out.summary == "LOAD OK - total load average: 0.12, 0.11, 0.08"


def test_undetermined_value_is_kept_but_not_a_metric() -> None:
    data, problems = parse_perfdata("a=U;1;2 b=5")
    assert problems == []
    assert data[0].value is None
    assert parse_plugin_output("OK | a=U b=5").metrics() == {"b": 5}


def test_bad_items_are_reported_and_the_rest_parsed() -> None:
    data, problems = parse_perfdata("good=1 noequals bad=abc 'open=1 =3 empty= after=2")
    assert [d.label for d in data] == ["good"]
    assert problems == [
        "'noequals': expected label=value",
        "bad='abc': expected a number with an optional unit (s, ms, us, %, B, KB, MB, GB, TB, c)",
        "\"'open=1 =3 empty= after=2\": unterminated quoted label",
    ]
    data, problems = parse_perfdata("=3 empty= after=2")
    assert [d.label for d in data] == ["after"]
    assert problems == ["'=3': empty label", "empty='': expected a number with an optional unit (s, ms, us, %, B, KB, "
                        "MB, GB, TB, c)"]


def test_windows_line_endings() -> None:
    out = parse_plugin_output("OK - fine | a=1\r\nmore\r\n")
    assert out.summary == "OK - fine"
    assert out.long_text == ["more"]
