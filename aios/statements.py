"""SQL compiled once per shape: the hot read paths skip building and compiling a QuerySet.

A `Shape` names one statement (its `key`), says how to build it (a values() QuerySet whose
request-specific values are `Slot`s) and carries this request's values. The first run on a
connection vendor builds and compiles the QuerySet; every later run binds the values into the
compiled parameters and executes straight through `connection.cursor()`, applying the same
converters values() would. Rows come back as the same dicts values() gives.

    shape = Shape(("agent-reviews",), lambda: Review.objects.for_agent(Slot("agent")).rows(),
                  agent=pk)
    rows = shape.then(("first", 5), lambda reviews: reviews[:5]).rows()

A value goes into the key instead of a Slot when it changes the SQL the planner should see (a
boolean that selects a partial index) or has few values (a page size). The SQL is the QuerySet's
own, so the column list is still derived from the model and the query count is unchanged.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Expression, IntegerField

# Compiled SQL is derived from code, never from data, so a per-process cache is safe under
# several workers. Bounded: a shape's key takes its filters' names, never their values.
MAX_STATEMENTS = 512
_statements: dict[tuple, "Statement"] = {}


class _Param:
    """A slot's place in the compiled parameters: its name and how its value is adapted."""

    __slots__ = ("field", "name", "prepare")

    def __init__(self, name, field=None, prepare=None):
        self.name, self.field, self.prepare = name, field, prepare

    def bind(self, values: dict, connection):
        value = values[self.name]
        if self.prepare is not None:
            value = self.prepare(value)
        field = self.field
        if field is None:
            return value
        if isinstance(field, IntegerField):
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            if not (low is None or low <= value) or not (high is None or value <= high):
                raise _NoRows  # what Django's integer lookups do: no row can match
        return field.get_db_prep_value(value, connection, prepared=False)


class _NoRows(Exception):
    pass


class Slot(Expression):
    """A placeholder for the value named `name`, adapted as `output_field` adapts values
    (None: passed as given: str, int, float)."""

    def __init__(self, name: str, output_field=None):
        super().__init__(output_field=output_field)
        self.name = name

    def __repr__(self):
        return f"Slot({self.name!r})"

    def as_sql(self, compiler, connection):
        return "%s", [_Param(self.name, self._output_field_or_none)]


def lookup_param(value, prepare):
    """A custom lookup's parameter: `prepare(value)`, or for a Slot, `prepare` at bind time."""
    if isinstance(value, Slot):
        return _Param(value.name, value._output_field_or_none, prepare)
    return prepare(value)


class Statement:
    """A compiled values() QuerySet: SQL, parameters with slots, row names and converters."""

    __slots__ = ("converters", "names", "params", "slots", "sql")

    def __init__(self, queryset, connection):
        query = queryset.query
        compiler = query.get_compiler(connection=connection)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        self.slots = [
            (position, param)
            for position, param in enumerate(self.params)
            if isinstance(param, _Param)
        ]
        if query.selected:
            self.names = tuple(query.selected)
        else:
            self.names = (*query.extra_select, *query.values_select, *query.annotation_select)
        fields = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
        self.converters = list(compiler.get_converters(fields).items())

    def rows(self, values: dict, connection) -> list[dict]:
        params = self.params
        if self.slots:
            params = params.copy()
            try:
                for position, param in self.slots:
                    params[position] = param.bind(values, connection)
            except _NoRows:
                return []
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        names = self.names
        if not self.converters:
            return [dict(zip(names, row, strict=True)) for row in fetched]
        rows = []
        for row in fetched:
            row = list(row)
            for pos, (convs, expression) in self.converters:
                value = row[pos]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[pos] = value
            rows.append(dict(zip(names, row, strict=True)))
        return rows


class Shape:
    """One named statement (`key`), how to build it (`build()`: a values() QuerySet with
    Slots), and the values of its slots for this call."""

    __slots__ = ("build", "key", "model", "values")

    def __init__(self, key: tuple, build, model, **values):
        self.key, self.build, self.model, self.values = key, build, model, values

    def then(self, key: tuple, step, **values) -> "Shape":
        """This shape narrowed by `step(queryset)` (an ordering, a filter, a slice)."""
        build = self.build
        return Shape((*self.key, *key), lambda: step(build()), self.model, **self.values, **values)

    def rows(self) -> list[dict]:
        connection = connections[DEFAULT_DB_ALIAS]
        cache_key = (connection.vendor, self.key)
        statement = _statements.get(cache_key)
        if statement is None:
            if len(_statements) >= MAX_STATEMENTS:
                _statements.clear()
            statement = _statements[cache_key] = Statement(self.build(), connection)
        return statement.rows(self.values, connection)


_sql: dict[tuple, tuple[str, list]] = {}


def compiled_sql(key: tuple, compile_sql, connection) -> tuple[str, list]:
    """`compile_sql()`'s (sql, params with Slots), run once per key and connection vendor: for
    statements that are no values() query (an UPDATE ... RETURNING). Bind with `bind()`."""
    cache_key = (connection.vendor, key)
    found = _sql.get(cache_key)
    if found is None:
        if len(_sql) >= MAX_STATEMENTS:
            _sql.clear()
        found = _sql[cache_key] = compile_sql()
    return found


def bind(params: list, values: dict, connection) -> list:
    """`params` with each Slot's value from `values`, adapted as its field adapts it."""
    return [
        param.bind(values, connection) if isinstance(param, _Param) else param for param in params
    ]
