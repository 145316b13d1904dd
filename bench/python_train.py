#!/usr/bin/env python3
"""bench/python_train.py - the Python reference for `rfm-train --only segments,churn,cltv`.

usage: python_train.py FILE.csv[.gz] [segments]
The steps rfm-train takes for those three models, done with the Python stack
users compare us with, in one process (Debian 12's python3-pandas,
python3-sklearn, python3-scipy, python3-xgboost; lifetimes is not packaged,
so its BG/NBD and Gamma-Gamma likelihoods are written out below and fitted
with scipy as lifetimes does):
  read + clean (no customer, cancellations, non-positive lines, duplicates),
  RFM per customer (recency, distinct purchase days, monetary);
  segments: standardised log1p(R, F, M), k-means (k-means++, 5 seedings)
    for k = 4..8, each k's silhouette on a 2,000-customer sample;
  cltv: BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, v) by maximum
    likelihood, every customer's expected purchases and value over 365 days;
  churn: the 90-day time split (features as of the cut, label: no purchase
    after it), 20 % held out; L2 logistic regression on log1p(R, F, M) and
    XGBoost (200 trees of depth 4, eta 0.05, subsample 0.8, hist) on eight
    features, both evaluated by AUC on the held-out customers; the boosted
    model refitted on every customer; TreeSHAP (pred_contribs) of every
    customer, as rfm-train's analytics do.
With "segments", only the read, RFM and the segments (bench/run.sh's first
section). Prints one key=value line: total_s (the steps, imports excluded), import_s,
customers, k, auc_logistic, auc_boosted. Exits 3 when a package is missing.
"""
import sys
import time

t_imp = time.monotonic()
try:
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from scipy.optimize import minimize
    from scipy.special import gammaln, hyp2f1
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    from pandas_rfm import read_clean  # beside this file
except ImportError as e:
    print(f"python_train.py: {e}", file=sys.stderr)
    sys.exit(3)
import_s = time.monotonic() - t_imp

t0 = time.monotonic()
_, df = read_clean(sys.argv[1])  # bench/pandas_rfm.py's reading and cleaning
df["day"] = (df["InvoiceDate"].dt.normalize() - pd.Timestamp("1970-01-01")).dt.days
snapshot = df["day"].max() + 1
days = df.groupby(["CustomerID", "day"], sort=True)["amount"].sum().reset_index()


def features(d, asof):
    """Per customer, from its purchase days before asof: R, F, M and the rich features."""
    d = d[d["day"] < asof]
    g = d.groupby("CustomerID")
    first, last, k = g["day"].min(), g["day"].max(), g["day"].count()
    f = pd.DataFrame({"recency": asof - last, "frequency": k, "monetary": g["amount"].sum()})
    f["tenure"] = asof - first
    f["aov"] = f["monetary"] / k
    f["ipt_mean"] = ((last - first) / (k - 1)).where(k >= 2)
    lastrow = ~d["CustomerID"].duplicated(keep="last")
    prev = g["day"].shift(1)[lastrow]
    prev.index = d.loc[lastrow, "CustomerID"].values
    f["ipt_trend"] = ((last - prev) - (prev - first) / (k - 2)).where(k >= 3)
    lastspend = g["amount"].last()
    f["spend_trend"] = (lastspend - (f["monetary"] - lastspend) / (k - 1)).where(k >= 2)
    f["T"] = asof - 1 - first
    f["t_x"] = last - first
    return f


rfm = features(days, snapshot)

# Segments: the k sweep.
z = StandardScaler().fit_transform(np.log1p(rfm[["recency", "frequency", "monetary"]].values))
sil = {}
for k in range(4, 9):
    km = KMeans(n_clusters=k, n_init=5, max_iter=300, random_state=42).fit(z)
    sil[k] = silhouette_score(z, km.labels_, sample_size=2000, random_state=42)
best_k = max(sil, key=sil.get)
if sys.argv[2:] == ["segments"]:
    print(f"customers={len(rfm)} k={best_k} total_s={time.monotonic() - t0:.3f} "
          f"import_s={import_s:.3f}")
    sys.exit(0)

# CLTV: BG/NBD and Gamma-Gamma (lifetimes' likelihoods), days as the unit.
x = (rfm["frequency"] - 1).values.astype(float)
tx, T = rfm["t_x"].values.astype(float), rfm["T"].values.astype(float)


def bgnbd_nll(lp):
    r, alpha, a, b = np.exp(lp)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                  - (r + x) * np.log(alpha + tx), -np.inf)
    return -np.sum(A1 + A2 + np.logaddexp(A3, A4))


bg = minimize(bgnbd_nll, np.zeros(4), method="Nelder-Mead", options={"maxiter": 4000})
r, alpha, a, b = np.exp(bg.x)
rep = x > 0
mx, fx = (rfm["monetary"].values / rfm["frequency"].values)[rep], x[rep]  # as lifetimes: repeaters


def gg_nll(lp):
    p, q, v = np.exp(lp)
    return -np.sum(gammaln(p * fx + q) - gammaln(p * fx) - gammaln(q) + q * np.log(v)
                   + (p * fx - 1) * np.log(mx) + p * fx * np.log(fx)
                   - (p * fx + q) * np.log(fx * mx + v))


gg = minimize(gg_nll, np.zeros(3), method="Nelder-Mead", options={"maxiter": 4000})
p, q, v = np.exp(gg.x)
t = 365.0
zz = t / (alpha + T + t)
expected = ((a + b + x - 1) / (a - 1)
            * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, zz))
            / (1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + tx)) ** (r + x)))
aov = rfm["monetary"].values / rfm["frequency"].values
spend = p * (v + x * aov) / (p * x + q - 1)  # Gamma-Gamma's conditional mean
cltv = expected * spend

# Churn: the time split, both learners, the refit and every customer's TreeSHAP.
cut = snapshot - 90
fc = features(days, cut)
after = set(days.loc[days["day"] >= cut, "CustomerID"])
y = np.array([0 if c in after else 1 for c in fc.index])
rng = np.random.default_rng(42)
order = rng.permutation(len(fc))
nte = round(0.2 * len(fc))
te, tr = order[:nte], order[nte:]
xl = StandardScaler().fit_transform(np.log1p(fc[["recency", "frequency", "monetary"]].values))
lr = LogisticRegression(C=1.0).fit(xl[tr], y[tr])
auc_l = roc_auc_score(y[te], lr.predict_proba(xl[te])[:, 1])
rich = fc[["recency", "frequency", "monetary", "tenure", "aov", "ipt_mean", "ipt_trend",
           "spend_trend"]].values
par = dict(n_estimators=200, max_depth=4, learning_rate=0.05, reg_lambda=1.0,
           min_child_weight=5, subsample=0.8, tree_method="hist", random_state=42, n_jobs=1,
           base_score=0.5)
gb = xgb.XGBClassifier(**par).fit(rich[tr], y[tr])
auc_b = roc_auc_score(y[te], gb.predict_proba(rich[te])[:, 1])
served = xgb.XGBClassifier(**par).fit(rich, y)
now = rfm[["recency", "frequency", "monetary", "tenure", "aov", "ipt_mean", "ipt_trend",
           "spend_trend"]].values
shap = served.get_booster().predict(xgb.DMatrix(now), pred_contribs=True)
prob = served.predict_proba(now)[:, 1]

total = time.monotonic() - t0
print(f"customers={len(rfm)} k={best_k} auc_logistic={auc_l:.4f} auc_boosted={auc_b:.4f} "
      f"bgnbd={r:.4g},{alpha:.4g},{a:.4g},{b:.4g} gg={p:.4g},{q:.4g},{v:.4g} "
      f"cltv_total={np.nansum(cltv):.0f} total_s={total:.3f} import_s={import_s:.3f}")
