"""
Raw HTTP over a socket, for requests no client library would send.
"""

import socket


def exchange(port: int, requests: bytes) -> bytes:
    """Send C{requests} at once on one connection; everything read until it closes."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(requests)
        received = bytearray()
        while chunk := connection.recv(1 << 20):
            received += chunk
    return bytes(received)
