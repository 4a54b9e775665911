"""schemathesis against /api/schema/, in process: every operation, every check, valid and
invalid input, anonymous and signed in. No server error, no response outside the schema, no
undocumented status code."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.helpers.seeded_world import seed

# Bounded so the file takes a couple of minutes per backend (RECIPES: -n 25 by hand).
EXAMPLES = 15

# Loaded at collection (no database needed) so each operation is a test of its own.
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())

load_all_checks()
# Every check but positive_data_acceptance ("a schema-valid request gets a 2xx"), which no
# schema here can satisfy: an opaque cursor, a password, a foreign key to a missing row or a
# query of only whitespace are schema-valid and still the client's mistake (a clean 400).
# negative_data_rejection, its counterpart, stays: schema-invalid input must be refused.
ALL_CHECKS = [
    check
    for check in CHECKS.get_all()
    if not isinstance(check, type) and check.__name__ != "positive_data_acceptance"
]
# schemathesis' in-process client does not decode br/gzip; compression has its own tests.
PLAIN = {"Accept-Encoding": "identity"}
# The routes' literal segments (`search`, `featured`, `mine`, ...). A schema-invalid path
# parameter that spells one reaches that sibling route, not the operation under test, which
# answers for itself. Hypothesis draws strings from the constants of the code loaded so far,
# so whether it spells one depends on what earlier tests imported.
ROUTE_SEGMENTS = {
    part
    for label in OPERATIONS
    for part in label.split(" ", 1)[1].split("/")
    if part and not part.startswith("{")
}


def reaches_its_operation(case) -> bool:
    return not any(str(value) in ROUTE_SEGMENTS for value in (case.path_parameters or {}).values())


FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def seeded(transactional_db):
    # Each request commits on its own, as in production: one request's database error must
    # not abort the transaction the next example runs in (it would on PostgreSQL).
    return seed()


def test_the_schema_lists_the_api():
    assert len(OPERATIONS) >= 15
    assert "POST /api/v1/auth/token/" in OPERATIONS
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance",
            "negative_data_rejection", "ignored_auth", "use_after_free"} <= names  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("who", ["anonymous", "owner"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_its_schema(label, who, seeded):
    operation = SCHEMA.find_operation_by_label(label)
    headers = dict(PLAIN)
    if who == "owner":
        headers["Authorization"] = f"Token {seeded.tokens['owner']}"
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ).filter(reaches_its_operation)

    @FUZZ
    @given(case=strategy)
    def fuzz(case):
        case.call_and_validate(headers=headers, checks=ALL_CHECKS)

    fuzz()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_an_agent_id_past_the_bigint_range_is_a_404_not_a_500(client, method):
    # Found by the fuzzing above: `agent_id=<huge>` reached the database and failed there.
    seeded = seed()
    response = getattr(client, method)(
        "/api/v1/agents/9223372036854775809/reviews/mine/",
        data={"rating": 3},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {seeded.tokens['owner']}",
    )
    assert response.status_code == 404
