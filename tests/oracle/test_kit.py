"""The pytest kit exactly as a driver author uses it in their own suite: one import, one line.

(Here the "third-party driver" is the model driver; an author names their own class.)"""

from snaptree.oracle.drivers.model import ModelDriver
from snaptree.oracle.stateful import conformance_test

TestModelAsVirtualBox = conformance_test(ModelDriver, profile="vbox", max_examples=25)
TestModelAsQemuImg = conformance_test(ModelDriver, profile="qemu-img", max_examples=25, blocks=4)
