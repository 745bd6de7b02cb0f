"""Online prediction: the request contract and a compiled, pandas-free predictor.

Used together by the prediction API::

    predictor = CompiledPredictor.from_pipeline(pipeline, run.signature)   # once per loaded model
    predictor.validate(instances, max_instances=1000)                      # raises InputError
    predictions, probabilities = predictor.predict(instances)

By subject:

* ``contract``: what a request must look like (``validate_instances``, ``InputError``);
* ``layout``: the fitted preprocessing of a catalog pipeline, read into arrays;
* ``encode``: instances → the model's float matrix, exactly as the pipeline would;
* ``kernels``: the final estimator's arithmetic, one class per estimator kind;
* ``trees``: every tree of an ensemble as one table walked with numpy;
* ``predictor``: ``CompiledPredictor``, which verifies and ties them together.
"""

from .contract import MAX_COLLECTED_ERRORS, MAX_EXTRA_KEYS, InputError, validate_instances
from .predictor import CompiledPredictor

__all__ = ["MAX_COLLECTED_ERRORS", "MAX_EXTRA_KEYS", "CompiledPredictor", "InputError", "validate_instances"]
