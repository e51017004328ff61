"""Turn a Keras ResNet into TF Serving SavedModels: image bytes in, top-k classes, probabilities and labels out.

Run from the repository root: `python -m export --help`. The library entry point is export.api.export_model.
"""
