"""The engines: where work runs (Ray, Dask) and how its progress is shown.

* :mod:`.raysession`: the Ray session (``conf/ray/``): an embedded Ray started for the
  run, or a running cluster reached; stopped in order, its processes ended;
* :mod:`.rayauth`: a cluster's token authentication, settled before ``ray.init``;
* :mod:`.scheduler`: the Dask scheduler (``conf/dask/``): threads, Dask-on-Ray on the
  Ray session, or a Dask distributed scheduler; Dask's progress;
* :mod:`.progress`: a bar on a terminal, plain lines in a log.

What runs there belongs to its users: the sweep's chunks as Ray tasks
(:mod:`pipeline.sweep.dispatch`), the store's frame (:mod:`pipeline.store.frame`)
reduced by the report (:mod:`pipeline.report.aggregate`).
"""
