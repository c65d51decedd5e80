"""
The process around the server: listening sockets and worker processes,
graceful stop, twistd's log, memory and open-file limits.
"""
