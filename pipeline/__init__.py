"""The pipeline around the model: configs in, sweeps on Ray, a Parquet store, reports out.

One subpackage per concept, each importable alone, dependencies pointing one
way (``configuration`` <- ``store`` <- ``sweep`` <- ``projection`` <- ``report``,
``calibrate``; ``cli`` on top):

* :mod:`pipeline.configuration`: schemas, the one Hydra composer, errors, Hydra's flags;
* :mod:`pipeline.store`: the results store's schema, writing, checking and reading;
* :mod:`pipeline.sweep`: grid expansion, chunks, Ray, the Hydra sweeper;
* :mod:`pipeline.projection`: the verdict vocabulary, roadmap projections,
  sensitivity, nightly history, the answer for one configuration;
* :mod:`pipeline.report`: Dask aggregation into typed tables, figures, HTML and Markdown;
* :mod:`pipeline.calibrate`: fio output, measurements, the fit and its report;
* :mod:`pipeline.cli`: the four entry points, a few lines each.

The packaged Hydra configs are ``asi_slowdown.pipeline.conf`` (the repository's ``conf/``).
"""
