import cma
from cma.memparse import memparse


def test_smoke() -> None:
    print(cma.__file__, __name__)
    assert memparse("1K") == (1024, 2)
