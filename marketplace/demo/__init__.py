"""The demo data set `manage.py seed_demo` loads: vocabulary (words), plan (who and how many),
rows (one generator per table). The same scale and seed always give the same rows."""
