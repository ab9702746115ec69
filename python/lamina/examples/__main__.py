"""The main job: ``python -m lamina.examples`` trains the MLP on handwritten digits
(``lamina.examples.digits``), then Keras's simple MNIST convnet (``lamina.examples.mnist``), each
beside PyTorch and Keras when they are installed. Each example also runs on its own, with options."""
import sys

from . import digits, mnist


def main():
    status = digits.main([])
    print()
    return status or mnist.main([])


if __name__ == "__main__":
    sys.exit(main())
