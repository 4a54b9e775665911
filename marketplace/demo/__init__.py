"""The demo data set `manage.py seed_demo` loads: vocabulary.py (the words), plan.py (how many
of what, drawn first), rows.py (one row generator per table, and the registry through which
another app's `demo` module adds its own), load.py (into the database)."""
