"""The tests' socket guard: a test that reaches for the network fails loudly instead of hanging."""

from __future__ import annotations

import socket

import pytest


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every socket connection fail with ``OSError("network access attempted …")``."""

    def refuse(self: socket.socket, address: object, *args: object, **kwargs: object) -> None:
        raise OSError(f"network access attempted during an offline test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
