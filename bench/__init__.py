"""`make bench`: the performance report, reproduced (issue 7).

A package of its own: the app never imports it. `python -m bench --help` lists the flags.
"""
