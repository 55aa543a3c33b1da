"""`hl7.mllp`: does an HL7 v2 interface engine (LIS, HIS ADT feed) accept a message and acknowledge it.

The default message is a QRY^A19 patient query: an engine that is up answers it (AA, or AE/AR when it does not
serve queries, which the check then reports), and unlike an ADT^A01 it creates nothing in the receiving system.
"""

from __future__ import annotations

import codecs
import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.interface.mllp import MllpDecoder, MllpError, frame
from checks.interface.outcomes import Endpoint, ProbeFailure, connect, guarded, timed_result
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

ACCEPT_CODES = frozenset({"AA", "CA"})
ERROR_CODES = frozenset({"AE", "CE"})
REJECT_CODES = frozenset({"AR", "CR"})


class Hl7Error(ValueError):
    """Text that is not an HL7 v2 message, or lacks what an acknowledgement must have."""


def new_control_id() -> str:
    """A fresh MSH-10: unique per run so an ACK can be matched to the message it answers (ST, at most 20 chars)."""
    return "XJ" + secrets.token_hex(8).upper()


def hl7_timestamp(unix: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.localtime(unix))


def segments(text: str) -> list[str]:
    """Segments of a message written with \\r, \\n or \\r\\n between them (packs are YAML; HL7 wants \\r)."""
    return [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s.strip()]


def stamp_message(template: str, control_id: str, timestamp: str) -> str:
    """The template with MSH-7 (date/time of message) and MSH-10 (control id) replaced, segments joined by \\r."""
    segs = segments(template)
    if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 8:
        raise Hl7Error("an HL7 v2 message must start with an MSH segment such as MSH|^~\\&|...")
    separator = segs[0][3]
    fields = segs[0].split(separator)
    while len(fields) < 12:
        fields.append("")
    fields[6] = timestamp
    fields[9] = control_id
    segs[0] = separator.join(fields)
    return "\r".join(segs) + "\r"


def default_query(spec: Hl7MllpSpec) -> str:
    """QRY^A19 (patient query) in HL7 2.4; MSH-7 and MSH-10 are filled in per run by `stamp_message`."""
    msh = "|".join([
        "MSH", "^~\\&", spec.sending_application, spec.sending_facility, spec.receiving_application,
        spec.receiving_facility, "", "", "QRY^A19^QRY_A19", "", spec.processing_id, spec.version,
    ])
    qrd = "|".join(["QRD", "", "R", "I", "XUNJIAN", "", "", "1^RD", spec.patient_id, "DEM"])
    return f"{msh}\r{qrd}\r"


@dataclass(frozen=True, slots=True)
class Ack:
    code: str
    """MSA-1: AA/AE/AR (original mode) or CA/CE/CR (enhanced mode)."""
    control_id: str
    """MSA-2: the MSH-10 of the message being acknowledged."""
    text: str
    """MSA-3, or the ERR segment's text when MSA-3 is empty."""
    message_type: str


def parse_ack(text: str) -> Ack:
    """Read MSH-9, MSA-1..3 and, for the error text, ERR; Hl7Error when this is not an acknowledgement."""
    segs = segments(text)
    if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 8:
        preview = text[:40].encode("unicode_escape").decode("ascii")
        raise Hl7Error(f"answer is not an HL7 v2 message (starts {preview!r})")
    separator = segs[0][3]
    component = segs[0][4]
    msh = segs[0].split(separator)
    message_type = msh[8] if len(msh) > 8 else ""
    msa = next((s.split(separator) for s in segs if s.startswith("MSA" + separator)), None)
    if msa is None:
        raise Hl7Error(f"answer {message_type or '(no MSH-9)'} has no MSA segment")
    code = msa[1].strip() if len(msa) > 1 else ""
    if code not in ACCEPT_CODES | ERROR_CODES | REJECT_CODES:
        raise Hl7Error(f"MSA-1 acknowledgment code {code!r} is not one of AA, AE, AR, CA, CE, CR")
    control_id = msa[2].strip() if len(msa) > 2 else ""
    detail = msa[3].strip() if len(msa) > 3 else ""
    if not detail:
        detail = _err_text(segs, separator, component)
    return Ack(code, control_id, detail, message_type)


def _err_text(segs: list[str], separator: str, component: str) -> str:
    """ERR-8 (user message, v2.5+) or the text components of ERR-1 / ERR-3 (older versions)."""
    for seg in segs:
        if not seg.startswith("ERR" + separator):
            continue
        fields = seg.split(separator)
        for index in (8, 1, 3):
            if len(fields) > index and fields[index].strip():
                parts = [p for p in re.split(f"[{re.escape(component)}&]", fields[index]) if p.strip()]
                return " ".join(parts)
    return ""


class Hl7MllpSpec(CheckSpec):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Sends one HL7 v2 message over MLLP (0x0b ... 0x1c 0x0d) and reads the acknowledgement. By default the "
        "message is a QRY^A19 patient query, which creates nothing in the receiving system; `message` replaces "
        "it (e.g. an ADT^A01 for a test patient, if the engine owner agrees). Each run gets a fresh control id "
        "(MSH-10) and timestamp (MSH-7). MSA-1 AA/CA is OK with the round-trip time in seconds as the value; "
        "AE/CE and AR/CR are CRITICAL content_mismatch with the MSA-3 (or ERR) text; a reply that is not "
        "MLLP-framed HL7 with an MSA segment, or that acknowledges another control id, is CRITICAL "
        "protocol_error; refused and timed-out connections are CRITICAL."
    )
    example: ClassVar[str] = (
        "id: lis.hl7.link\n"
        "kind: hl7.mllp\n"
        "host: lis.example.local\n"
        "port: 2575\n"
        "receiving_application: LIS\n"
        'warn: "> 2s"\n'
    )

    kind: Literal["hl7.mllp"] = "hl7.mllp"
    host: str = Field(description="Host name or IP address of the interface engine.")
    port: int = Field(2575, ge=1, le=65535, description="MLLP listener port.")
    message: str | None = Field(
        None, description="HL7 v2 message to send (segments on separate lines); MSH-7 and MSH-10 are set per run."
    )
    sending_application: str = Field("XUNJIAN", description="MSH-3 of the default query.")
    sending_facility: str = Field("", description="MSH-4 of the default query.")
    receiving_application: str = Field("", description="MSH-5 of the default query, e.g. LIS.")
    receiving_facility: str = Field("", description="MSH-6 of the default query.")
    processing_id: Literal["P", "T", "D"] = Field("P", description="MSH-11 of the default query: P, T or D.")
    version: str = Field("2.4", description="MSH-12 of the default query.")
    patient_id: str = Field("XUNJIAN-TEST", description="QRD-8, the patient the default query asks about.")
    encoding: str = Field("utf-8", description="Character set on the wire, e.g. utf-8 or gb18030.")

    @field_validator("encoding")
    @classmethod
    def _codec(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown character set {v!r}; expected e.g. utf-8, gb18030") from None
        return v

    @field_validator("message")
    @classmethod
    def _message(cls, v: str | None) -> str | None:
        if v is not None:
            stamp_message(v, "X", "X")
        return v

    def probe(self, ctx: RunContext) -> list[Result]:
        endpoint = Endpoint(self.host, self.port)

        def run(started_at: float, t0: float) -> Result:
            control_id = new_control_id()
            outgoing = stamp_message(self.message or default_query(self), control_id, hl7_timestamp(ctx.clock()))
            with connect(endpoint, ctx.remaining(self.timeout)) as sock:
                connected = time.monotonic() - t0
                sock.sendall(frame(outgoing.encode(self.encoding)))
                reply = read_frame(sock, ctx, self.timeout, endpoint)
            seconds = time.monotonic() - t0
            try:
                ack = parse_ack(reply.decode(self.encoding, errors="replace"))
            except Hl7Error as exc:
                raise ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{endpoint}: {exc}") from None
            if ack.control_id != control_id:
                raise ProbeFailure(
                    Status.CRITICAL, Outcome.PROTOCOL_ERROR,
                    f"{endpoint} acknowledged control id {ack.control_id!r}, not ours ({control_id})",
                )
            if ack.code not in ACCEPT_CODES:
                meaning = "error" if ack.code in ERROR_CODES else "reject"
                raise ProbeFailure(
                    Status.CRITICAL, Outcome.CONTENT_MISMATCH,
                    f"{endpoint} answered {ack.code} ({meaning}): {ack.text or 'no error text'}",
                )
            return timed_result(
                self, seconds, f"{endpoint} acknowledged {ack.code} in {seconds:.3f} s", started_at, t0,
                {"connect_seconds": connected, "ack_seconds": seconds - connected},
            )

        return guarded(self, ctx, str(endpoint), run)


def read_frame(sock: socket.socket, ctx: RunContext, default_timeout: float, endpoint: Endpoint) -> bytes:
    """The first MLLP frame the peer sends, re-arming the socket timeout to what is left of the deadline."""
    decoder = MllpDecoder()
    while True:
        sock.settimeout(ctx.remaining(default_timeout))
        data = sock.recv(65536)
        if not data:
            where = "in the middle of a frame" if decoder.pending else "without answering"
            raise ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{endpoint} closed the connection {where}")
        try:
            frames = decoder.feed(data)
        except MllpError as exc:
            raise ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{endpoint} is not speaking MLLP: {exc}") from None
        if frames:
            return frames[0]


SPECS: dict[str, type[CheckSpec]] = {"hl7.mllp": Hl7MllpSpec}
