"""Initial coefficients of the rationals (a_0..a_5, b_1..b_4), per denominator form.

``swish`` was produced by ``python -m splice_kat.fit`` (least squares on [-3, 3] from the [5/4]
Padé approximant of x·sigmoid(x); max error 1.2e-6 on that interval in both forms). ``identity``
is exact: a_1 = 1, everything else 0.
"""

from __future__ import annotations

INITS: dict[str, dict[str, tuple[list[float], list[float]]]] = {
    "paper": {
        "swish": ([3.262757983008e-07, 0.499999999991, 0.249997337219, 0.0532651191622, 0.00580254216514,
                   0.000275133709551],
                  [-4.699940036555e-08, 0.106530261785, -4.558561535280e-09, 0.000550267763303]),
        "identity": ([0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    },
    "pau_a": {
        "swish": ([3.071686297620e-07, 0.500000778663, 0.249997820237, 0.0532659302735, 0.00580286884466,
                   0.000275173555895],
                  [4.064623067736e-06, 0.106528339328, 1.247404487055e-06, 0.000550191169434]),
        "identity": ([0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    },
}
