"""The main job: ``python -m lamina.examples`` trains the MLP on handwritten digits
(``lamina.examples.digits``), then Keras's simple MNIST convnet (``lamina.examples.mnist``), each
beside PyTorch and Keras when they are installed. Each example also runs on its own, with options."""
import argparse
import sys

from . import digits, mnist
from .digits import positive_int


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m lamina.examples",
        description="The main job: an MLP on scikit-learn's 8x8 handwritten digits (python -m lamina.examples.digits), "
                    "then Keras's simple MNIST convnet on 5,000 real MNIST images (python -m lamina.examples.mnist), "
                    "each beside lamina.reference, PyTorch and Keras when they are installed. Run either part "
                    "alone for its own options (epochs, batch size, ...).")
    parser.add_argument("--threads", type=positive_int, default=None, help="threads for lamina (and PyTorch)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the splits, initialisation and shuffling")
    parser.add_argument("--no-compare", action="store_true", help="train lamina only, without the peers")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common = ["--seed", str(args.seed)] + (["--threads", str(args.threads)] if args.threads else []) \
        + (["--no-compare"] if args.no_compare else [])
    status = digits.main(common)
    print()
    return status or mnist.main(common)


if __name__ == "__main__":
    sys.exit(main())
