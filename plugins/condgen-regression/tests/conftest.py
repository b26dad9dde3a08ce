"""The core's fixtures (toy data, real MNIST) for this plugin's tests."""

from conftest import mnist_dir, register_plugin, toy  # noqa: F401  (tests/conftest.py; pythonpath has tests)
