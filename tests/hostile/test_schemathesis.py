"""Schemathesis over the whole OpenAPI of a live server, with an admin token: no generated request makes a 5xx.

The server runs on loopback in its own process with some of everything loaded (``tests/hostile/schemafuzz.py``).
The schema is the live server's ``/openapi.json``; every operation gets a bounded, derandomized run of valid and
of invalid requests, so the test repeats exactly and fits ``make test``. ``bench/schemathesis_run.py`` is the
long run.

Besides "not a server error", each answer must be one the spec declares (its status code and content type): the
error answers (400, 401, 403, 404, 413, 414, 422) are declared for every management route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.conftest import examples
from tests.hostile.schemafuzz import Seeded, fuzz, load_schema, seed

#: Examples per operation and generation mode (valid, invalid): about 1,400 requests in all in ``make test`` (what
#: found the 400 of a URL over 64 KiB, ``test_error_registry``'s 414 now), ten times as many in ``make test-deep``.
MAX_EXAMPLES = examples(10)
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    server = seed(Path(tmp_path_factory.mktemp("schemathesis")))
    yield server
    server.server.stop()


def test_the_spec_names_each_operation_once(seeded: Seeded) -> None:
    operations = [r.ok() for r in load_schema(seeded).get_all_operations()]
    ids = [op.definition.raw["operationId"] for op in operations]
    assert len(operations) > 60
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_no_request_makes_a_server_error(seeded: Seeded) -> None:
    tally = fuzz(seeded, max_examples=MAX_EXAMPLES, checks=CHECKS)
    print(tally.summary())
    assert not tally.server_errors, "\n".join([tally.summary(), *tally.server_errors[:20]])
    assert not tally.other_failures, "\n".join([tally.summary(), *tally.other_failures[:20]])
    # the run reached real code: most operations answered 2xx at least once
    assert sum(n for status, n in tally.statuses.items() if status < 300) > tally.cases // 10, tally.summary()
    assert tally.cases > 60 * MAX_EXAMPLES, tally.summary()
