#!/usr/bin/env python3
"""bench/pandas_rfm.py - the reference for the scale section of `make bench`.

usage: pandas_rfm.py FILE.csv
The same reading and cleaning steps as rfm-train's ingest, in pandas: parse
the Online Retail layout, drop lines without a customer, cancellations
(invoice starting with C), non-positive quantity or price and duplicate
lines, then recency / frequency (distinct invoice days) / monetary per
customer. Prints one line: lines, customers, seconds, lines per second and
peak RSS (this process), in the key=value form bench/run.sh reads.
Exits 3 when pandas is not installed (the bench skips the line).
"""
import resource
import sys
import time

try:
    import pandas as pd
except ImportError:
    sys.exit(3)


def read_clean(path):
    """The export read and cleaned as rfm-train cleans it (python_train.py
    uses it too): the lines read, and the purchase lines kept with their
    amount."""
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": float},
                     usecols=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice",
                              "CustomerID"])
    lines = len(df)
    df = df.dropna(subset=["CustomerID"])
    df = df[~df["InvoiceNo"].str.startswith("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df = df.drop_duplicates()
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    return lines, df


if __name__ == "__main__":
    t0 = time.monotonic()
    lines, df = read_clean(sys.argv[1])
    df["day"] = df["InvoiceDate"].dt.normalize()
    snapshot = df["day"].max() + pd.Timedelta(days=1)
    g = df.groupby("CustomerID")
    rfm = pd.DataFrame({"recency": (snapshot - g["day"].max()).dt.days,
                        "frequency": g["day"].nunique(),
                        "monetary": g["amount"].sum()})
    secs = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"lines={lines} customers={len(rfm)} total_s={secs:.3f} "
          f"mlines_per_s={lines / secs / 1e6:.2f} peak_rss_mb={rss:.1f}")
