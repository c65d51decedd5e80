"""
twistd's own log, written at a cost that does not show next to a request.

Under twistd every event, an access line per request included, goes through
twisted.logger's text file observer.  It formats each event's timestamp from
scratch (three C{datetime} conversions and a C{strftime}, about 17 us) and each
message through PEP 3101 formatting: about 50 us a line, more than a quarter of
what answering a small page costs.

L{give_twistd_this_log} hands twistd the same observer writing the same lines
to the same place (standard output under C{-n}, else C{--logfile} or
C{twistd.log}, rotated on C{SIGUSR1}), but with each second's timestamp
formatted once and the access log's pre-formatted lines written as they are.
C{--logger} and C{--syslog} keep twistd's own choice.

pypiserver's log flags change that observer (L{LogChoices}): C{-v} adds
debug events, C{--log-file} a second file, C{--log-stream} moves or drops
what C{-n} writes to standard output, C{--log-frmt} formats each line the
way Python's C{logging} would.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Callable

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from twisted.python.logfile import LogFile
from zope.interface import directlyProvides

LINE_FORMAT = "{log_line}"
"""
The C{log_format} of an event whose text comes formatted already, in its
C{log_line} field (the access log's lines): written as it is, at no cost.
"""

DEFAULT_LOG_FILE = "twistd.log"
"""Where a daemon logs without C{--logfile}, as twistd names it."""


class SecondStamp:
    """
    twistd's timestamp (RFC 3339, local time) for a C{log_time}, formatted
    once per second: the text depends on nothing finer.
    """

    def __init__(self, time_format: str = timeFormatRFC3339) -> None:
        self._format = time_format
        self._second: int | None = None
        self._text = "-"

    def __call__(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when // 1)
        if second != self._second:
            self._text = formatTime(second, self._format)
            self._second = second
        return self._text


def classic_formatter(stamp: Callable[[float | None], str]) -> Callable[[LogEvent], str | None]:
    """
    L{formatEventAsClassicLogText} with C{stamp} for timestamps, and a
    shortcut, giving the same text, for events in L{LINE_FORMAT} (access lines): they arrive formatted,
    one line each, without failure or system.
    """

    def format_event(event: LogEvent) -> str | None:
        if event.get("log_format") == LINE_FORMAT and "log_failure" not in event and "log_system" not in event:
            level = event.get("log_level")
            return (
                f"{stamp(event.get('log_time'))} [{event.get('log_namespace', '-')}#"
                f"{level.name if level is not None else '-'}] {event['log_line']}\n"
            )
        return formatEventAsClassicLogText(event, formatTime=stamp)

    return format_event


def classic_text_observer(out: IO[Any]) -> FileLogObserver:
    """A text observer writing to C{out} what twistd's would, faster."""
    return FileLogObserver(out, classic_formatter(SecondStamp()))


LOG_STREAMS = ("stdout", "stderr", "none")
"""Where C{--log-stream} may send the log that C{twistd -n} writes to
standard output."""

LOG_RECORD_FIELDS = (
    "asctime", "created", "msecs", "name", "levelname", "levelno", "message", "process", "thread", "threadName",
)
"""The C{logging.LogRecord} fields a C{--log-frmt} may name."""


@dataclass(frozen=True, slots=True)
class LogChoices:
    """
    What pypiserver's log flags asked for.

    @ivar verbosity: how many C{-v}: with none, debug events are left out.
    @ivar log_file: a file the log is written to as well, or L{None}.
    @ivar stream: where C{twistd -n}'s log goes: one of L{LOG_STREAMS}.
    @ivar line_format: a C{logging} format string for each line, or
        L{None} for twistd's own lines.
    """

    verbosity: int = 0
    log_file: str | None = None
    stream: str = "stdout"
    line_format: str | None = None


def logging_style_formatter(line_format: str) -> Callable[[LogEvent], str | None]:
    """
    Lines as Python's C{logging} would format them with C{line_format},
    from the fields of L{LOG_RECORD_FIELDS}.

    @raise KeyError: C{line_format} names another field.
    @raise ValueError: C{line_format} is not a %-format.
    @raise TypeError: C{line_format} is not a %-format of named fields.
    """

    def format_event(event: LogEvent) -> str | None:
        when = event.get("log_time") or time.time()
        level = event.get("log_level") or LogLevel.info
        message = formatEvent(event)
        if "log_failure" in event:
            message += "\n" + event["log_failure"].getTraceback()
        fields = {
            "asctime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) + f",{int(when % 1 * 1000):03d}",
            "created": when,
            "msecs": when % 1 * 1000,
            "name": event.get("log_namespace", "-"),
            "levelname": logging.getLevelName(_LEVEL_NUMBERS.get(level, 20)),
            "levelno": _LEVEL_NUMBERS.get(level, 20),
            "message": message,
            "process": os.getpid(),
            "thread": threading.get_ident(),
            "threadName": threading.current_thread().name,
        }
        return line_format % fields + "\n"

    format_event({"log_format": "a check of --log-frmt", "log_time": 0.0})
    return format_event


_LEVEL_NUMBERS = {
    LogLevel.debug: 10, LogLevel.info: 20, LogLevel.warn: 30, LogLevel.error: 40, LogLevel.critical: 50,
}
"""The C{logging} level number of each twisted.logger level."""


def logs_to_stdout(server_options) -> bool:
    """Whether twistd, with C{server_options}, writes its log to standard output."""
    if server_options.get("logger") or server_options.get("syslog"):
        return False
    return bool(server_options.get("nodaemon", False)) and (server_options.get("logfile") or "-") == "-"


def _rotated_on_sigusr1(log_file: LogFile) -> LogFile:
    """C{log_file}, rotated on C{SIGUSR1} unless that signal is taken."""
    previous = signal.getsignal(signal.SIGUSR1)
    if previous and not getattr(previous, "rotates_logs", False):
        return log_file

    def rotate(number, frame) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(log_file.rotate)
        if previous:
            previous(number, frame)

    rotate.rotates_logs = True
    signal.signal(signal.SIGUSR1, rotate)
    return log_file


def twistd_log_file(server_options) -> IO[Any] | None:
    """
    The file twistd would log to with C{server_options}, opened as twistd
    opens it (a L{LogFile} rotated on C{SIGUSR1} unless that signal is taken);
    or None when twistd is to choose itself: a C{--logger} or C{--syslog}, or
    a daemon asked to log to standard output (which twistd refuses).
    """
    if server_options.get("logger") or server_options.get("syslog"):
        return None
    if logs_to_stdout(server_options):
        return sys.stdout
    name = server_options.get("logfile") or ""
    if name == "-":
        return None
    return _rotated_on_sigusr1(LogFile.fromFullPath(name or DEFAULT_LOG_FILE))


def give_twistd_this_log(application, server_options, choices: LogChoices = LogChoices()) -> None:
    """
    Make twistd log through L{classic_text_observer} (or C{choices}'
    format), to where twistd would and where C{choices} say, unless its
    options or the application already name another observer: twistd
    consults an application's L{ILogObserver} component before opening
    its own.

    @param application: twistd's application, holding the server's service.
    @param server_options: twistd's options (a C{ServerOptions}).
    @param choices: what pypiserver's log flags asked for.
    """
    if application.getComponent(ILogObserver, None) is not None:
        return
    outs = []
    twistds = twistd_log_file(server_options)
    if twistds is sys.stdout:
        twistds = {"stdout": sys.stdout, "stderr": sys.stderr, "none": None}[choices.stream]
    if twistds is not None:
        outs.append(twistds)
    elif server_options.get("logger") or server_options.get("syslog") or server_options.get("logfile") == "-":
        return  # twistd's choice
    if choices.log_file is not None:
        outs.append(_rotated_on_sigusr1(LogFile.fromFullPath(choices.log_file)))
    formatter = (
        logging_style_formatter(choices.line_format) if choices.line_format is not None else classic_formatter(SecondStamp())
    )
    observers = [FileLogObserver(out, formatter) for out in outs]
    hidden = frozenset() if choices.verbosity > 0 else frozenset({LogLevel.debug})
    application.setComponent(ILogObserver, _to_every(observers, hidden))


def _to_every(observers: list[FileLogObserver], hidden_levels: frozenset) -> Callable[[LogEvent], None]:
    """An observer giving each event not of C{hidden_levels} to each of C{observers}."""
    if len(observers) == 1 and not hidden_levels:
        return observers[0]

    def observe(event: LogEvent) -> None:
        if event.get("log_level") in hidden_levels:
            return
        for observer in observers:
            observer(event)

    directlyProvides(observe, ILogObserver)
    return observe
