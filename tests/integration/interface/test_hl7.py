"""hl7.mllp against scripted MLLP listeners: AA, AE, AR, garbage, a stale control id, split frames, silence."""

from __future__ import annotations

import pytest

from checks.interface.mllp import frame
from checks.result import Outcome, Status
from tests.integration.interface.probing import run_check
from tests.integration.interface.servers import (
    LoopbackServer,
    closed_port,
    hl7_ack,
    mllp_responder,
    send_bytes,
    stay_silent,
)

pytestmark = pytest.mark.integration


def test_aa_is_ok_and_the_query_carries_fresh_ids() -> None:
    received: list[str] = []

    def reply(message: str) -> bytes:
        received.append(message)
        return hl7_ack(message, "AA")

    with LoopbackServer(mllp_responder(reply)) as server:
        first = run_check("hl7.mllp", host="127.0.0.1", port=server.port, receiving_application="LIS")
        second = run_check("hl7.mllp", host="127.0.0.1", port=server.port, receiving_application="LIS")
    assert first.status is Status.OK, first.summary
    assert second.status is Status.OK, second.summary
    assert "AA" in first.summary
    msh = [m.split("\r", 1)[0].split("|") for m in received]
    assert msh[0][4] == "LIS"
    assert msh[0][8].startswith("QRY^A19")
    assert len(msh[0][6]) == 14 and msh[0][6].isdigit()
    assert msh[0][9] != msh[1][9]
    assert received[0].split("\r")[1].startswith("QRD|")


def test_ae_is_critical_with_the_error_text() -> None:
    responder = mllp_responder(lambda m: hl7_ack(m, "AE", "Unknown patient XUNJIAN-TEST"))
    with LoopbackServer(responder) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "AE" in result.summary and "Unknown patient XUNJIAN-TEST" in result.summary


def test_ar_is_critical() -> None:
    with LoopbackServer(mllp_responder(lambda m: hl7_ack(m, "AR", "Unsupported message type"))) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "reject" in result.summary and "Unsupported message type" in result.summary


def test_custom_adt_message_gets_fresh_control_id() -> None:
    received: list[str] = []

    def reply(message: str) -> bytes:
        received.append(message)
        return hl7_ack(message, "CA")

    adt = "MSH|^~\\&|XJ|H|ADT|H|||ADT^A01|FIXED|T|2.5\nEVN|A01\nPID|||TEST^^^H||TEST^PATIENT\n"
    with LoopbackServer(mllp_responder(reply)) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port, message=adt)
    assert result.status is Status.OK, result.summary
    segments = received[0].split("\r")
    assert segments[0].split("|")[9] != "FIXED"
    assert [s[:3] for s in segments if s] == ["MSH", "EVN", "PID"]


def test_garbage_without_framing_is_protocol_error() -> None:
    with LoopbackServer(send_bytes(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)
    assert "not speaking MLLP" in result.summary


def test_framed_non_hl7_is_protocol_error() -> None:
    with LoopbackServer(send_bytes(frame(b"hello"))) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)


def test_ack_for_another_message_is_protocol_error() -> None:
    with LoopbackServer(mllp_responder(lambda m: hl7_ack(m, "AA", control_id="OLD123"))) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)
    assert "OLD123" in result.summary


def test_ack_split_across_many_reads_is_reassembled() -> None:
    with LoopbackServer(mllp_responder(lambda m: hl7_ack(m, "AA"), chunk=3)) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert result.status is Status.OK, result.summary


def test_truncated_frame_is_protocol_error() -> None:
    with LoopbackServer(mllp_responder(lambda m: hl7_ack(m, "AA")[:-2])) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)
    assert "middle of a frame" in result.summary


def test_silent_engine_times_out_critical() -> None:
    with LoopbackServer(stay_silent) as server:
        result = run_check("hl7.mllp", host="127.0.0.1", port=server.port, timeout="300ms")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.TIMEOUT)


def test_engine_down_is_connection_refused() -> None:
    result = run_check("hl7.mllp", host="127.0.0.1", port=closed_port())
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONNECTION_REFUSED)
