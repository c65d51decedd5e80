"""
--hash-algo takes only the hashes PEP 503 allows in link fragments; any
other is refused at start-up, before a scan could trip over it.
"""

import pytest
from twisted.python import usage

from twistedpypi.tap import Options


def parse(*arguments):
    options = Options()
    options.parseOptions(list(arguments))
    return options


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", "SHA512"])
def test_pep_503_hashes_are_accepted(tmp_path, algo):
    assert parse("--hash-algo", algo, str(tmp_path)).config().hash_algo == algo.lower()


@pytest.mark.parametrize("algo", ["shake_128", "shake_256", "blake2b", "sha3_256", "nohash"])
def test_other_hashes_are_refused_with_the_allowed_list(tmp_path, algo):
    with pytest.raises(usage.UsageError, match="md5, sha1, sha224, sha256, sha384, sha512"):
        parse("--hash-algo", algo, str(tmp_path))
