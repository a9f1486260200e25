"""Reference values for StatisticsTests, computed with numpy and scipy on fixed inputs.

    pip install numpy scipy statsmodels && python3 make_statistics_fixture.py   (writes statistics.json here)

The fixed-effects fits (one intercept per series, a common slope: the report's pooled fit) are
statsmodels' OLS of y ~ x + C(group).
"""
import json
import os

import numpy as np
import statsmodels.formula.api as smf
from scipy import stats

samples = {
    "three": [1.0, 2.0, 4.0],
    "five": [0.31, 0.29, 0.35, 0.30, 0.33],
    "spread": [10.0, -2.5, 3.25, 8.0, 0.5, 7.75, -1.0, 4.5],
}
out = {"summaries": {}, "lines": {}, "t975": {}}
for name, values in samples.items():
    a = np.array(values)
    sd = a.std(ddof=1)
    half = stats.t.ppf(0.975, len(a) - 1) * sd / np.sqrt(len(a))
    out["summaries"][name] = {"values": values, "mean": a.mean(), "sd": sd, "ci95_half_width": half,
                              "median": float(np.median(a))}

lines = {
    "exact": ([1, 2, 3, 4], [3, 5, 7, 9]),
    "noisy": ([0.0, 0.5, 1.1, 1.9, 2.4, 3.3, 4.0], [1.2, 0.9, 0.55, 0.1, -0.3, -0.5, -1.1]),
    "loglaw": (list(np.log([100, 400, 1600, 6400, 25600])), list(np.log([30.0, 16.1, 7.4, 4.1, 1.9]))),
}
for name, (x, y) in lines.items():
    r = stats.linregress(x, y)
    n = len(x)
    out["lines"][name] = {"x": [float(v) for v in x], "y": [float(v) for v in y], "slope": r.slope, "intercept": r.intercept,
                          "slope_se": r.stderr, "slope_ci95_half_width": stats.t.ppf(0.975, n - 2) * r.stderr,
                          "r_squared": r.rvalue ** 2}
# Series at different heights on nearly the same slope, as log Lip against log(p / (n d)) per (n, d).
fixed_effects = {
    "three_series": (
        [-3.0, -2.0, -1.0, 0.0, -2.5, -1.5, -0.5, 0.5, 1.5, -4.0, -3.0, -2.0],
        [2.9, 2.45, 2.05, 1.4, 3.7, 3.3, 2.7, 2.35, 1.8, 1.6, 1.25, 0.7],
        [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2],
    ),
    "two_series_opposite": (
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0],
        [0.01, -0.11, -0.19, -0.31, -0.39, -0.49, 3.99, 3.91, 3.79, 3.71, 3.61, 3.49],
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
    ),
}
out["fixed_effects"] = {}
for name, (x, y, g) in fixed_effects.items():
    model = smf.ols("y ~ x + C(g)", data={"x": x, "y": y, "g": g}).fit()
    out["fixed_effects"][name] = {"x": x, "y": y, "groups": g, "slope": float(model.params["x"]),
                                  "slope_se": float(model.bse["x"]), "df_resid": float(model.df_resid),
                                  "slope_ci95_half_width": float(model.conf_int().loc["x", 1] - model.params["x"])}
for df in [1, 2, 3, 7, 12, 30, 31, 45, 80, 250, 5000]:
    out["t975"][str(df)] = stats.t.ppf(0.975, df)

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "statistics.json"), "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")
