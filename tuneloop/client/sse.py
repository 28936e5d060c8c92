"""Server-Sent Events framing, as `/v1/generate` and `/v1/chat/completions` stream them."""

from __future__ import annotations


class SseParser:
    """Incremental Server-Sent Events framing: feed text as it arrives, get whole events."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, chunk: str) -> list[tuple[str, str]]:
        """The (event, data) pairs completed by `chunk`; event is "message" when unnamed."""
        self._buf = (self._buf + chunk).replace("\r\n", "\n")  # a CR may end a chunk
        events = []
        while "\n\n" in self._buf:
            block, self._buf = self._buf.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
            if data:
                events.append((name, "\n".join(data)))
        return events
