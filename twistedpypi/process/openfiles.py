"""
The limit on open files, raised so that hundreds of clients fit.

Every client holds a socket, and a large download its file and a duplicate
of its socket too (L{twistedpypi.web.sendfile}).  systemd, Docker and
login shells start processes with a soft limit of 1,024 open files, kept
that low for programs that use C{select()}, which cannot watch more; the
hard limit above it is for programs that can to raise it themselves, as
nginx's C{worker_rlimit_nofile} does.  Twisted's reactor on Linux uses
epoll, so the server raises it.
"""

from __future__ import annotations

from twisted.logger import Logger

log = Logger()

HIGHEST = 1 << 20
"""The soft limit asked for when the hard limit is unlimited: Linux's
default C{fs.nr_open}, the most any process may have."""


def raise_open_file_limit(reactor: object) -> tuple[int, int] | None:
    """
    Raise this process's soft limit on open files to its hard limit, unless
    C{reactor} watches descriptors with C{select()}.

    @return: the soft limits before and after, if it was raised.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    from twisted.internet.selectreactor import SelectReactor

    if isinstance(reactor, SelectReactor):
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = HIGHEST if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as error:
        log.warn(
            "cannot raise the limit on open files from {soft} to {wanted}: {error}",
            soft=soft,
            wanted=wanted,
            error=error,
        )
        return None
    log.info("raised the limit on open files from {soft} to {wanted}", soft=soft, wanted=wanted)
    return soft, wanted
