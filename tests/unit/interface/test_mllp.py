"""MLLP framing: frames reassembled across arbitrary reads, garbage refused."""

from __future__ import annotations

import pytest

from checks.interface.mllp import MllpDecoder, MllpError, frame

ACK = b"MSH|^~\\&|LIS||XUNJIAN||20260101000000||ACK|A1|P|2.4\rMSA|AA|XJ1\r"


def test_frame_wraps_in_start_and_end_blocks() -> None:
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_frame_split_byte_by_byte() -> None:
    decoder = MllpDecoder()
    out: list[bytes] = []
    for byte in frame(ACK):
        out += decoder.feed(bytes([byte]))
    assert out == [ACK]
    assert not decoder.pending


def test_end_block_split_between_reads() -> None:
    decoder = MllpDecoder()
    data = frame(ACK)
    assert decoder.feed(data[:-1]) == []
    assert decoder.pending
    assert decoder.feed(data[-1:]) == [ACK]


def test_fs_without_cr_is_content_not_the_end() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bA\x1cB") == []
    assert decoder.feed(b"\x1c\x0d") == [b"A\x1cB"]


def test_two_frames_in_one_read_and_whitespace_between() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(frame(b"one") + b"\r\n" + frame(b"two")) == [b"one", b"two"]


def test_bytes_outside_a_frame_are_refused() -> None:
    with pytest.raises(MllpError, match="0x48 outside an MLLP frame"):
        MllpDecoder().feed(b"HTTP/1.1 400 Bad Request\r\n")


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(MllpError, match="longer than 16 bytes"):
        MllpDecoder(max_frame=16).feed(b"\x0b" + b"x" * 32)
