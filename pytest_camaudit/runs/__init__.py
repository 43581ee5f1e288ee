"""A run's record and what is done with it after the run: shard files, the merge, summaries.

* :mod:`.layout` — the run file's format (``pytest-camaudit/run/2``): what a case, a test and the
  run's identity look like as JSON, which settings decide verdicts;
* :mod:`.writer` — writes a run file line by line, its figures linked into a folder beside it;
* :mod:`.reader` — reads one back as a stream (header, then one case or test per line), refusing
  corrupt, truncated or foreign files with the line that is wrong;
* :mod:`.tables` — the run's totals and per-class table (accumulated case by case) and the
  terminal lines a run and a merge print alike;
* :mod:`.shards` — several run files as one: compatibility, node-id ordered de-duplicated streams;
* :mod:`.merge` — ``python -m pytest_camaudit merge``: one report, one JSON, gates over all shards;
* :mod:`.markdown` — the Markdown summary for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment;
* :mod:`.cli` — the command line of ``python -m pytest_camaudit``.

Knows nothing of pytest and never imports torch: a merge job needs neither. May import
:mod:`pytest_camaudit.dataset` (the gates; its import-light modules only), :mod:`pytest_camaudit.report`
(the HTML report) and the bottom modules (``records``, ``fileio``…); only the plugin imports it.
"""
