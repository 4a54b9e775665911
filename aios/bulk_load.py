"""Loading generated rows fast: COPY on PostgreSQL, large `executemany` batches on SQLite.

Rows carry explicit ids and timestamps and every concrete column of their model, in the model's
field order (bulk_create would overwrite auto_now fields with the time of the load). On
PostgreSQL the secondary indexes and foreign keys can be dropped for the load and rebuilt once
after it. Knows no app: the models to load come in as arguments.
"""

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator, Sequence

from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import DateTimeField, Model
from tqdm import tqdm

PROGRESS_EVERY = 5_000
SQLITE_BATCH = 5_000


def columns_of(model: type[Model]) -> list[str]:
    """Every concrete column of `model`, in field order: the shape of a loaded row."""
    return [field.column for field in model._meta.concrete_fields]


def next_id(model: type[Model]) -> int:
    """The id after the largest one in `model`'s table (1 when it is empty)."""
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1


def empty_tables(models: Sequence[type[Model]]) -> None:
    """Delete every row of these tables, in the order given (children before parents).

    Raw statements, not QuerySet.delete(): no signals, no per-row cascade collection.
    """
    tables = [connection.ops.quote_name(model._meta.db_table) for model in models]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608  names from _meta


class BulkLoader:
    """Loads tables of rows and keeps how long each step took, for a report.

    `timings` holds (label, rows, seconds) per loaded table and per timed step, in order.
    """

    def __init__(self, *, progress: bool):
        self.progress = progress
        self.timings: list[tuple[str, int, float]] = []

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for the whole load, with PostgreSQL's limits set for it."""
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # One COPY of a million rows is one statement: lift the settings'
                    # per-request statement_timeout for this transaction only.
                    cursor.execute("SET LOCAL statement_timeout = 0")
                    # Check foreign keys as each COPY ends instead of queueing every check
                    # until the commit.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            yield

    @contextlib.contextmanager
    def timed(self, label: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.timings.append((label, 0, time.monotonic() - started))

    def load(self, label: str, model: type[Model], rows: Iterable[tuple], *, total: int) -> None:
        """Write `rows` (tuples in `columns_of(model)` order) and check that there were `total`."""
        started = time.monotonic()
        bar = tqdm(
            total=total,
            desc=f"{label:>13}",
            unit=" rows",
            file=sys.stderr,
            disable=not self.progress,
        )
        rows = _checked_width(model, iter(rows))
        with bar:
            if connection.vendor == "postgresql":
                written = _copy(model, rows, bar)
            else:
                written = _insert(model, rows, bar)
        if written != total:
            raise CommandError(f"{label}: wrote {written} rows, planned {total}")
        self.timings.append((label, written, time.monotonic() - started))

    @contextlib.contextmanager
    def indexes_rebuilt_after(self, models: Sequence[type[Model]]) -> Iterator[None]:
        """PostgreSQL: load these tables without their secondary indexes and foreign keys.

        They are dropped before the block and rebuilt after it, in the same transaction: one
        sort per index instead of a million index insertions, one join per foreign key instead
        of a lookup per row. DDL is transactional, so whether the load commits or fails, every
        index and constraint is there afterwards. Primary keys and unique constraints stay: they
        guard the rows while they are written. Elsewhere a no-op.
        """
        if connection.vendor != "postgresql":
            yield
            return
        foreign_keys, indexes = _secondary_schema([model._meta.db_table for model in models])
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for table, name, _ in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        yield
        with self.timed("(indexes)"), connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            for table, name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")

    def finish(self, models: Sequence[type[Model]]) -> None:
        """After loading explicit ids: move the id sequences past them; PostgreSQL: ANALYZE."""
        with self.timed("(analyze)"), connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
            if connection.vendor == "postgresql":
                for model in models:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _checked_width(model: type[Model], rows: Iterator[tuple]) -> Iterator[tuple]:
    """`rows`, after checking that the first one has a value for every column of `model`."""
    first = next(rows, None)
    if first is None:
        return
    width = len(model._meta.concrete_fields)
    if len(first) != width:
        raise CommandError(
            f"{model._meta.label}: rows have {len(first)} values for its {width} columns "
            f"({', '.join(columns_of(model))}); a field was added or removed without its rows"
        )
    yield first
    yield from rows


def _copy(model: type[Model], rows: Iterator[tuple], bar: tqdm) -> int:
    quote = connection.ops.quote_name
    columns = ", ".join(map(quote, columns_of(model)))
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    written = 0
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for written, row in enumerate(rows, start=1):
            copy.write_row(row)
            if not written % PROGRESS_EVERY:
                bar.update(PROGRESS_EVERY)
    bar.update(written % PROGRESS_EVERY)
    return written


def _insert(model: type[Model], rows: Iterator[tuple], bar: tqdm) -> int:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    # Names come from _meta; values are bound.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({values})"  # noqa: S608
    datetimes = [i for i, field in enumerate(fields) if isinstance(field, DateTimeField)]
    adapt = connection.ops.adapt_datetimefield_value
    written, batch = 0, []
    with connection.cursor() as cursor:
        for row in rows:
            if datetimes:
                row = list(row)
                for i in datetimes:
                    row[i] = adapt(row[i])
            batch.append(row)
            if len(batch) == SQLITE_BATCH:
                cursor.executemany(sql, batch)
                written += len(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
            bar.update(len(batch))
    return written


def _secondary_schema(tables: list[str]) -> tuple[list, list]:
    """The foreign keys (table, name, definition) and the indexes no constraint owns
    (name, definition) of these PostgreSQL tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid IN (SELECT unnest(%s::text[])::regclass) ORDER BY conname",
            [tables],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            "WHERE indrelid IN (SELECT unnest(%s::text[])::regclass) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY 1",
            [tables],
        )
        return foreign_keys, cursor.fetchall()
