"""
The twistd dropin that makes C{twistd pypi} start a twistedpypi server.
"""

from twisted.application.service import ServiceMaker

serviceMaker = ServiceMaker(
    "twistedpypi",
    "twistedpypi.tap",
    "A private Python package index (pypiserver-compatible flags).",
    "pypi",
)
