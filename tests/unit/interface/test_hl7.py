"""HL7 v2 message stamping and ACK parsing."""

from __future__ import annotations

import pytest

from checks.interface.hl7 import Hl7Error, Hl7MllpSpec, default_query, new_control_id, parse_ack, stamp_message


def spec(**options: object) -> Hl7MllpSpec:
    return Hl7MllpSpec.model_validate({"id": "lis.hl7", "kind": "hl7.mllp", "host": "lis.example.local", **options})


def test_control_ids_are_fresh_and_fit_msh_10() -> None:
    ids = {new_control_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) <= 20 for i in ids)


def test_default_query_is_qry_a19_with_qrd() -> None:
    text = stamp_message(default_query(spec(receiving_application="LIS", patient_id="P1")), "XJ1", "20260102030405")
    msh, qrd = text.rstrip("\r").split("\r")
    fields = msh.split("|")
    assert fields[1] == "^~\\&"
    assert fields[2] == "XUNJIAN" and fields[4] == "LIS"
    assert fields[6] == "20260102030405"
    assert fields[8] == "QRY^A19^QRY_A19"
    assert fields[9] == "XJ1"
    assert fields[10:12] == ["P", "2.4"]
    assert qrd.split("|")[8] == "P1"


def test_stamp_replaces_time_and_control_id_and_normalises_newlines() -> None:
    template = "MSH|^~\\&|A|B|C|D|19990101||ADT^A01|OLD|P|2.5\nPID|1\r\nPV1|1\n"
    text = stamp_message(template, "NEW", "20260101000000")
    assert text == "MSH|^~\\&|A|B|C|D|20260101000000||ADT^A01|NEW|P|2.5\rPID|1\rPV1|1\r"


def test_stamp_pads_a_short_msh() -> None:
    text = stamp_message("MSH|^~\\&|A", "NEW", "T")
    assert text.split("|")[9] == "NEW"


def test_stamp_keeps_a_non_default_field_separator() -> None:
    text = stamp_message("MSH#^~\\&#A#B#C#D#X##ADT^A01#OLD#P#2.3", "NEW", "T")
    assert text.startswith("MSH#^~\\&#A#B#C#D#T##ADT^A01#NEW#")


def test_message_must_start_with_msh() -> None:
    with pytest.raises(Hl7Error, match="MSH"):
        stamp_message("PID|1", "X", "T")
    with pytest.raises(ValueError, match="MSH"):
        spec(message="EVN|A01")


def test_parse_aa() -> None:
    ack = parse_ack("MSH|^~\\&|LIS||XJ||20260101||ACK^A19|1|P|2.4\rMSA|AA|XJ1|Message accepted\r")
    assert (ack.code, ack.control_id, ack.text, ack.message_type) == ("AA", "XJ1", "Message accepted", "ACK^A19")


def test_parse_ae_falls_back_to_err_text() -> None:
    v25 = "MSH|^~\\&|LIS||XJ||20260101||ACK|1|P|2.5\rMSA|AE|XJ1\rERR||PID^1^3|204^Unknown key^HL70357|E||||Patient not found\r"
    assert parse_ack(v25).text == "Patient not found"
    v23 = "MSH|^~\\&|LIS||XJ||20260101||ACK|1|P|2.3\rMSA|AR|XJ1|\rERR|^^^207&Application internal error\r"
    ack = parse_ack(v23)
    assert ack.code == "AR"
    assert ack.text == "207 Application internal error"


def test_parse_enhanced_mode_codes() -> None:
    assert parse_ack("MSH|^~\\&|A||B||T||ACK|1|P|2.5\rMSA|CA|XJ1\r").code == "CA"


def test_parse_refuses_non_hl7_and_missing_msa() -> None:
    with pytest.raises(Hl7Error, match="not an HL7 v2 message"):
        parse_ack("<html>error</html>")
    with pytest.raises(Hl7Error, match="no MSA segment"):
        parse_ack("MSH|^~\\&|A||B||T||ADR^A19|1|P|2.4\rPID|1\r")
    with pytest.raises(Hl7Error, match="MSA-1"):
        parse_ack("MSH|^~\\&|A||B||T||ACK|1|P|2.4\rMSA|OK|XJ1\r")


def test_encoding_must_be_a_known_codec() -> None:
    assert spec(encoding="gb18030").encoding == "gb18030"
    with pytest.raises(ValueError, match="unknown character set"):
        spec(encoding="klingon")
