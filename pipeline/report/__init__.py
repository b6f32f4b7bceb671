"""Reports: aggregate the store on Dask into typed tables, then render HTML and Markdown.

* :mod:`.aggregate`: the store's frame (:mod:`pipeline.store.frame`) reduced on Dask per
  stage and cube cell;
* :mod:`.build`: collect a :class:`~.build.Report`, render ``index.html``, ``summary.md``, CSV;
* :mod:`.figures`: the seaborn figures; ``templates/``: the page's Jinja template.
"""
