"""
Raw HTTP over a socket, for requests no client library would send.
"""

import socket


def exchange(port: int, requests: bytes, timeout: float | None = 15.0) -> bytes:
    """
    Send C{requests} at once on one connection; everything read until the
    server closes it (or resets it: what came before is the answer).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(requests)
        received = bytearray()
        while True:
            try:
                chunk = connection.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)
