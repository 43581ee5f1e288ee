"""The pytest plugin: hooks, options, fixtures, stash keys, integrations and the run's collector.

* :mod:`.hooks` — the ``pytest11`` entry point (import-light: no torch until a fixture needs it);
* :mod:`.options` — every ``--camaudit-*`` flag and its ini twin, validated, as plain settings;
* :mod:`.fixtures` — ``camaudit_detector``, ``camaudit_cam_engine``, ``camaudit``;
* :mod:`.keys` — the ``StashKey`` s the hooks and fixtures share;
* :mod:`.collector` — the controller's record of every case, for the report and the summary;
* :mod:`.integrations` — pytest-html extras, JUnit properties, ``--camaudit-json``;
* :mod:`.cases` — the ``camaudit_cases`` marker, ``--camaudit-cases`` items, ``camaudit_entry``;
* :mod:`.gates` — dataset gates judged on the controller.

The top layer: may import every other part of the package.
"""
