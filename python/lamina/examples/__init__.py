"""Runnable examples: ``python -m lamina.examples.digits`` trains an MLP on scikit-learn's bundled
handwritten digits and compares lamina with its NumPy reference and, when installed, PyTorch.
"""
