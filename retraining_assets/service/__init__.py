"""The prediction service (``retrain serve``): the champion, and a rollout's challenger, over HTTP.

``create_app(pipeline)`` in ``app.py`` builds the FastAPI application; the rest is plain Python:
request models from the DatasetSpec (``schemas``), the served models and their refresh
(``models``), fast scoring of a loaded model (``scoring``), routing, labelling and logging of
predictions (``predictions``) and micro-batching of single-row requests (``batching``).
"""
