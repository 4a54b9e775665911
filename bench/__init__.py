"""`make bench`: the performance report, reproduced (issue 7), judged by the read-path targets
(issue 13).

A package of its own: the app never imports it. `python -m bench --help` lists the flags.
"""
