"""marketplace.demo without a database: shapes, the allocation, and rows that fit their models.

tests/marketplace/test_seed.py seeds through the command and checks what lands.
"""

import pytest
from django.core.management import CommandError

from aios.bulk_load import columns_of
from marketplace.demo.plan import BENCH, SMALL, allocate, make_plan, shape_for
from marketplace.demo.rows import tables

FIRST_IDS = {
    "user": 1,
    "category": 1,
    "publisher": 1,
    "agent": 1,
    "installation": 1,
    "review": 1,
    "knowledge": 1,
}


def test_integer_scales_keep_the_bench_proportions():
    assert shape_for("bench") == BENCH
    assert shape_for("10000") == BENCH
    assert shape_for("small") == SMALL
    tenfold = shape_for("100000")
    assert (tenfold.users, tenfold.installations) == (10 * BENCH.users, 10 * BENCH.installations)
    assert shape_for("20").installations == 2_000
    for bad in ("huge", "5", "-3"):
        with pytest.raises(CommandError):
            shape_for(bad)


def test_allocate_is_exact_capped_and_proportional():
    counts = allocate(1_000, [8.0, 4.0, 2.0, 1.0, 1.0], cap=400)
    assert sum(counts) == 1_000
    assert max(counts) == 400
    assert counts[1] > counts[2] > counts[3]
    assert allocate(7, [1.0, 1.0, 1.0], cap=10) in ([3, 2, 2], [2, 3, 2], [2, 2, 3])
    with pytest.raises(CommandError):
        allocate(100, [1.0, 1.0], cap=10)


def all_rows(seed: int, *, admin=True, demo=True) -> dict[str, list[tuple]]:
    plan = make_plan(shape_for("20"), seed, first_ids=FIRST_IDS, admin=admin, demo=demo)
    return {label: list(rows) for label, _, rows, _ in tables(plan)}


def test_every_table_gets_its_planned_rows_with_a_value_per_model_column():
    plan = make_plan(shape_for("20"), 1, first_ids=FIRST_IDS, admin=True, demo=True)
    for label, model, rows, total in tables(plan):
        rows = list(rows)
        assert len(rows) == total, label
        assert {len(row) for row in rows} == {len(columns_of(model))}, label
        assert [row[0] for row in rows] == list(range(1, total + 1)), label  # explicit ids


def test_the_same_seed_plans_the_same_rows():
    def without_password_hashes(rows):  # make_password salts afresh on every call
        return {**rows, "users": [row[:1] + row[2:] for row in rows["users"]]}

    first = without_password_hashes(all_rows(1))
    assert without_password_hashes(all_rows(1)) == first
    assert without_password_hashes(all_rows(2)) != first


def test_without_the_demo_accounts_no_row_points_at_them():
    rows = all_rows(1, admin=False, demo=False)
    assert not {row[4] for row in rows["users"]} & {"admin", "demo"}
    assert 2 not in {row[1] for row in rows["installations"] + rows["knowledge"]}  # demo's id
    assert 2 not in {row[2] for row in rows["reviews"]}
