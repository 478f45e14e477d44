"""Byte-level tokenizer: vocab 256, any UTF-8 text in, the exact text back out; no downloads."""
from __future__ import annotations

VOCAB_SIZE = 256


class ByteTokenizer:
    """Tokens are the UTF-8 bytes of the text."""

    vocab_size = VOCAB_SIZE

    def encode(self, text: str) -> list[int]:
        """UTF-8 bytes of ``text`` as ints in [0, 256)."""
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int] | bytes) -> str:
        """Inverse of :meth:`encode`; invalid UTF-8 (e.g. a cut multi-byte char) becomes U+FFFD."""
        return bytes(int(i) & 0xFF for i in ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: list[int]) -> bytes:
        """The raw bytes (for streaming output that must not split characters)."""
        return bytes(int(i) & 0xFF for i in ids)
