"""Calibration: fit a CPU profile's uncertain costs to measurements.

* :mod:`.fio`: fio JSON output, decoded and checked;
* :mod:`.measurements`: manifests and published points;
* :mod:`.fit`: bounded least squares with a Laplace posterior;
* :mod:`.run`: the calibration end to end; :mod:`.report`: its Markdown report.
"""
