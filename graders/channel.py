"""The authenticated event stream from a grading child to the runner.

The child runs the learner's code in its own process, so nothing it writes to a file the learner can
name is trustworthy. Events travel instead on a pipe the runner creates, and each line carries a
sequence number and an HMAC-SHA256 tag under a key the child reads from an inherited descriptor (which
it closes at once, before any learner code is imported). The runner checks every line:

* a line whose tag does not verify (written by anything but the grader's signer) is **forged**;
* a sequence number that is not the next one is **duplicated**, **replayed** or **lost**;

and either fails the criterion running at that moment as ``tampered`` (``graders.runner``).

What this does not stop, said plainly: the signer lives in the same process as the learner's code, so
code that deliberately digs the signing object out of the interpreter's memory (``gc.get_objects``,
frame walking, ``ctypes``) could sign its own lines. Those tools are watched by the grading child's
audit hook (``graders.tamper.audit``) and flagged; the sandbox and the per-call integrity checks are the
other layers.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets

__all__ = ["KEY_BYTES", "new_key", "read_key", "Signer", "Verifier", "ChannelError"]

KEY_BYTES = 32


class ChannelError(ValueError):
    """A line on the event pipe that the grader's signer did not write, or not in its place."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def read_key(fd: int) -> bytes:
    """Read the key from the inherited descriptor ``fd`` and close it (it cannot be read twice)."""
    try:
        key = b""
        while len(key) < KEY_BYTES:
            chunk = os.read(fd, KEY_BYTES - len(key))
            if not chunk:
                break
            key += chunk
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise ChannelError(f"the grading key is {len(key)} bytes, expected {KEY_BYTES}")
    return key


def _tag(mac: "hmac.HMAC", seq: int, body: str) -> str:
    h = mac.copy()
    h.update(f"{seq}\n{body}".encode("utf-8"))
    return h.hexdigest()


class Signer:
    """Turns event lines into signed, numbered lines (the child's side). Keeps no copy of the raw key."""

    def __init__(self, key: bytes):
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._seq = 0

    def sign(self, body: str) -> str:
        """``body`` (one JSON object, no newline) -> one wire line ending in a newline."""
        line = json.dumps({"seq": self._seq, "tag": _tag(self._mac, self._seq, body), "body": body})
        self._seq += 1
        return line + "\n"


class Verifier:
    """Checks signed lines in order (the runner's side); ``next_seq`` is the number expected next."""

    def __init__(self, key: bytes):
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.next_seq = 0

    def open(self, line: str) -> str:
        """The body of a wire line, or ChannelError saying why it cannot be trusted."""
        try:
            raw = json.loads(line)
            seq, tag, body = int(raw["seq"]), str(raw["tag"]), str(raw["body"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ChannelError(f"a line that is not a signed grading event: {line[:120]!r}") from None
        if not hmac.compare_digest(tag, _tag(self._mac, seq, body)):
            raise ChannelError(f"a forged grading event (its signature does not verify): {body[:120]!r}")
        if seq != self.next_seq:
            what = "a duplicated or replayed" if seq < self.next_seq else "a lost"
            raise ChannelError(f"{what} grading event (number {seq}, expected {self.next_seq})")
        self.next_seq += 1
        return body
