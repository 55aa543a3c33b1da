"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol): <VT> message <FS><CR>, decoded across arbitrary reads."""

from __future__ import annotations

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_FRAME = 4 * 1024 * 1024
"""An ACK is a few hundred bytes; anything this large is not an answer we should keep buffering."""


class MllpError(ValueError):
    """The peer does not speak MLLP: bytes outside a frame, or a frame too large."""


def frame(message: bytes) -> bytes:
    return START_BLOCK + message + END_BLOCK


class MllpDecoder:
    """Incremental decoder: feed whatever recv() returned, get back the complete frames so far.

    Whitespace between frames is tolerated (some engines send a newline after <FS><CR>); any other byte
    outside a frame means the peer is not speaking MLLP.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self._max_frame = max_frame

    @property
    def pending(self) -> bool:
        """True while a frame has started but not ended (a closed connection now is a truncated message)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        for byte in data:
            if not self._in_frame:
                if byte == 0x0B:
                    self._in_frame = True
                    self._buffer.clear()
                elif chr(byte) not in " \t\r\n":
                    raise MllpError(f"byte 0x{byte:02x} outside an MLLP frame (expected 0x0b start block)")
                continue
            self._buffer.append(byte)
            if self._buffer.endswith(END_BLOCK):
                frames.append(bytes(self._buffer[: -len(END_BLOCK)]))
                self._buffer.clear()
                self._in_frame = False
            elif len(self._buffer) > self._max_frame:
                raise MllpError(f"MLLP frame longer than {self._max_frame} bytes without an end block")
        return frames
