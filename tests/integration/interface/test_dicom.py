"""dicom.echo against pynetdicom Verification SCPs on 127.0.0.1: accepted, rejected AE titles, down, hung."""

from __future__ import annotations

import importlib.util

import pytest

from checks.result import Outcome, Status
from tests.conftest import require
from tests.integration.interface.probing import run_check
from tests.integration.interface.servers import LoopbackServer, closed_port, dicom_scp, send_bytes, stay_silent

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _pynetdicom() -> None:
    require(importlib.util.find_spec("pynetdicom") is not None, "pynetdicom (pip install xunjian[dicom])")


def test_echo_accepted_is_ok() -> None:
    with dicom_scp("PACS") as port:
        result = run_check("dicom.echo", host="127.0.0.1", port=port, called_ae_title="PACS")
    assert result.status is Status.OK, result.summary
    assert "C-ECHO" in result.summary
    assert result.unit == "seconds"


def test_wrong_called_ae_title_is_rejected_and_says_why() -> None:
    with dicom_scp("PACS") as port:
        result = run_check("dicom.echo", host="127.0.0.1", port=port, called_ae_title="WRONG")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.AUTH_FAILED)
    assert "rejected" in result.summary
    assert "Called AE title not recognised" in result.summary
    assert "Service User" in result.summary


def test_unknown_calling_ae_title_is_rejected() -> None:
    with dicom_scp("PACS", require_calling=["WORKSTATION1"]) as port:
        result = run_check("dicom.echo", host="127.0.0.1", port=port, called_ae_title="PACS")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.AUTH_FAILED)
    assert "Calling AE title not recognised" in result.summary


# pynetdicom's AssociationSocket._shutdown_socket skips close() when shutdown() of a never-connected socket
# raises, so CPython closes it on release with a ResourceWarning. The library's, not the probe's: no fd is kept.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_pacs_down_is_connection_refused() -> None:
    result = run_check("dicom.echo", host="127.0.0.1", port=closed_port())
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONNECTION_REFUSED)


def test_silent_peer_times_out() -> None:
    with LoopbackServer(stay_silent) as server:
        result = run_check("dicom.echo", host="127.0.0.1", port=server.port, timeout="500ms")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.TIMEOUT), result.summary


def test_abort_from_the_peer_is_protocol_error() -> None:
    a_abort_by_user = b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    with LoopbackServer(send_bytes(a_abort_by_user)) as server:
        result = run_check("dicom.echo", host="127.0.0.1", port=server.port, timeout="2s")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)
    assert "aborted the association" in result.summary


def test_non_dicom_service_is_protocol_error() -> None:
    with LoopbackServer(send_bytes(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as server:
        result = run_check("dicom.echo", host="127.0.0.1", port=server.port, timeout="2s")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR)
    assert "is this a DICOM port?" in result.summary
