"""scripts/bench: every benchmark in one run, judged against the targets (bench/all.py).

specs    the benches the run starts and the targets it judges: the one list to extend
summary  rows, the Markdown summary and its rewrite between the markers (pure)
machine  is the machine quiet, the commit, and the broker and fleet a run starts itself
"""
