"""Scale-out: the same service and the same answers on Ray.

:mod:`.serve` is the HTTP service on Ray Serve (``serve run facefaas.scale.serve:app``,
``facefaas serve --ray``): the unchanged FastAPI app as the ingress, and detector replicas that
hold the models they serve. :mod:`.offline` is detection over large folders on Ray Data
(``facefaas detect DIR --ray``): an actor pool of detectors, the plain command's outputs.
Importing this package imports no Ray; the modules that need it import it themselves (the
``ray`` extra).
"""
