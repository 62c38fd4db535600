"""Looking at a registry: the ``kirin ui`` web app and the notebook display.

Light on purpose: importing this package (or :mod:`.data`, :mod:`.svg`,
:mod:`.notebook`) loads no web library, so ``Commit._repr_html_`` and
``Dataset.metric_history`` work without the ``kirin[ui]`` extra. Only
:mod:`.app` and :mod:`.server` import Starlette, Jinja2 and uvicorn
(``tests/test_architecture.py`` holds the line).
"""
