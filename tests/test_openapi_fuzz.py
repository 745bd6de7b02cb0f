"""The schema-driven fuzz pass over /api/v1/: schemathesis reads /api/schema/ from the live server and,
for every operation, sends what the schema allows and what it does not, each case with one role's
token (every role gets a share of every operation's cases).

Every answer must be documented: no server error, a status code the operation lists, a body that
matches that status's schema, the declared content type and headers, no operation that answers
without credentials, and no request the schema calls invalid accepted. Path ids, body references
and uploaded files come from real rows as well as missing ones (``tests.support.api_fuzz``), so
requests reach the services, not only the 404s. What this pass found lives on as ordinary
regression tests in each app's ``test_api_fuzz_findings.py``.
"""

from __future__ import annotations

import os
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mlops_web.celery import app as celery_app
from tests.support.api_fuzz import ROLES, fuzz_world, install_hooks

# Generated cases per operation in the fuzzing phase: enough to find, bounded for `make test`. A deeper
# pass by hand: FUZZ_EXAMPLES=200 FUZZ_SEED=<any> bash tests/run.sh tests/test_openapi_fuzz.py
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": EXAMPLES},
    # The schema carries no examples. The coverage phase sends each parameter's and field's edge cases
    # (missing, wrong type, bounds); methods an address does not list are left out, since only DRF's
    # generic 405 answers them. No stateful phase: the seeded world already holds every kind of row.
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True, "unexpected-methods": []},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
    # An upload only reaches the service past its cheap checks with one of the world's files (a fraction
    # of what is drawn), so it gets more cases than the others.
    "operations": [
        # A multipart part is text on the wire: a `note` drawn as a number (a "negative" case) reaches the
        # server as the string it reads, so refusing schema-violating data cannot apply to this body.
        {"include-path": "/api/v1/datasets/{id}/versions/", "generation": {"max-examples": 4 * EXAMPLES},
         "checks": {"negative_data_rejection": {"enabled": False}}},
        # The list filters ignore what they do not know (`sort` falls back to the default order, as its
        # description says, and an unknown `status` filters nothing or everything), as the list pages do.
        # Refusing them is a change of those endpoints' contract, left for after keyset pagination lands.
        {"include-path-regex": "^/api/v1/(datasets|deployments|promotions)/$", "include-method": "GET",
         "checks": {"negative_data_rejection": {"enabled": False}}},
    ],
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        "ignored_auth": {"enabled": True},
        "negative_data_rejection": {"enabled": True},
    },
})


@pytest.fixture
def world(django_db_reset_sequences, settings):
    # ids from 1 whatever ran before: the cases drawn (and the role each goes out with) depend on them
    # The pass sends invalid tokens on purpose (is authentication enforced?); it must not lock itself out.
    settings.API_TOKEN_FAILURE_LIMIT = 1_000_000
    built = fuzz_world()
    yield built
    celery_app.control.purge()  # the jobs it started are no other test's work


@pytest.fixture
def role_headers(world):
    return {role: world.token_headers(role) for role in ROLES}


@pytest.fixture
def api_schema(live_server, world, role_headers):
    # the schema is served to any role that reads the site
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", config=CONFIG,
                                           headers=role_headers["viewer"])
    install_hooks(schema, world)
    return schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis 4.32 renames the test node per operation through `_nodeid`, which pytest 9.2 no longer has
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


def role_for(case) -> str:
    """The role whose token sends this case: derived from the case itself, so a replayed (or shrunk to
    the same) example goes out with the same token, and each role gets about a fifth of every
    operation's cases. One role per case rather than all five keeps the pass inside `make test`'s time:
    which role may call what is the role matrix's job (tests/role_matrix.py); here every role's answers
    must still be the documented ones."""
    drawn = repr((case.path_parameters, case.query, case.body, case.headers)).encode()
    return ROLES[zlib.crc32(drawn) % len(ROLES)]


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_the_documented_one(case, role_headers):
    role = role_for(case)
    try:
        case.call_and_validate(headers=role_headers[role])
    except Exception as exc:
        exc.add_note(f"with the {role} token")
        raise
