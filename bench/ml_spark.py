"""ML leg: MLlib (the training job's own pipeline) against scikit-learn, on one training set.

    python -m bench.ml_spark spark --rows N --seed S --repeats R --data DIR   # builds DIR, fits MLlib
    python -m bench.ml_spark sklearn --repeats R --data DIR                    # fits scikit-learn on DIR

Each prints one BENCH_RESULT JSON line. scikit-learn runs in a process of its own: PySpark's JVM lives until
the Python process that started it ends, even after ``spark.stop()``, and it should not share the two cores
with the fits it is compared with.

The training set is built exactly as ``train_fraud_model`` builds it (point-in-time features from
``spark_jobs.features``, the same model inputs, the newest 20% as holdout) from a generated day, written
once to Parquet; MLlib and scikit-learn then fit the same model family (standardise + class-weighted L2
logistic regression) on the same rows, and both are scored with the project's own AUC-PR.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from hybrid_platform import config

DAY = date(2026, 8, 10)
DAY_MS = 86_400_000


def build_training_set(rows: int, seed: int, out: Path) -> dict[str, Any]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from spark_jobs import seed_day
    from spark_jobs import train_fraud_model as tfm
    from spark_jobs.session import build_session

    spark = build_session("bench-ml-data", config.load())
    start = seed_day.day_start_ms(DAY)
    # Every label known (a week later): the training set is the same whichever engine fits it.
    raw_rows, labels, counts = seed_day.synthesize_day(DAY, rows, seed, labels_as_of_ms=start + 8 * DAY_MS)
    raw = seed_day.raw_transactions_frame(spark, raw_rows)
    first_copy = Window.partitionBy("txn_id").orderBy("source_partition", "source_offset")
    deduped = raw.withColumn("copy", F.row_number().over(first_copy)).where("copy = 1").drop("copy")
    silver_like = deduped.join(
        seed_day.raw_labels_frame(spark, labels).select("txn_id", "is_fraud", "labeled_at"), "txn_id", "left"
    )
    as_of_ms = start + DAY_MS + 7 * DAY_MS
    examples = tfm.training_examples(silver_like, as_of_ms).cache()
    boundary = examples.select(F.percentile_approx("event_time", 1.0 - tfm.DEFAULT_HOLDOUT_SHARE, 10_000)).first()
    holdout_from = int(boundary[0])
    train, _ = tfm.split_at(examples, holdout_from)
    counts_by_country = [(r["country"], int(r["count"])) for r in tfm.country_counts(train).collect()]
    countries = tfm.choose_countries(counts_by_country, tfm.DEFAULT_TOP_COUNTRIES, tfm.DEFAULT_MIN_COUNTRY_ROWS)
    names = list(tfm.input_names(countries))
    dataset = tfm.add_model_inputs(examples, countries).select(*names, tfm.LABEL, "event_time")
    train, holdout = tfm.split_at(dataset, holdout_from)
    train.drop("event_time").write.parquet(str(out / "train"))
    holdout.drop("event_time").write.parquet(str(out / "holdout"))
    spark.stop()
    return {"feature_names": names, "generated": counts}


def mllib(out: Path, names: list[str], repeats: int, warm_up_fits: int) -> dict[str, Any]:
    from pyspark.ml.functions import vector_to_array

    from spark_jobs import train_fraud_model as tfm
    from spark_jobs.session import build_session

    spark = build_session("bench-ml-mllib", config.load())
    train = spark.read.parquet(str(out / "train")).cache()
    holdout = spark.read.parquet(str(out / "holdout")).cache()
    by_label = {int(r[tfm.LABEL]): int(r["count"]) for r in train.groupBy(tfm.LABEL).count().collect()}
    holdout.count()
    genuine_weight, fraud_weight = tfm.balanced_weights(by_label.get(0, 0), by_label.get(1, 0))
    weighted = tfm.with_class_weights(train, genuine_weight, fraud_weight).cache()
    weighted.count()
    fits = []
    fitted = None
    # The first fits warm the JVM: reported apart, not in the median (Profile.mllib_warm_up_fits says why).
    for _ in range(warm_up_fits + repeats):
        started = time.monotonic()
        fitted = tfm.pipeline(names, tfm.DEFAULT_REG_PARAM, tfm.DEFAULT_MAX_ITER).fit(weighted)
        fits.append(time.monotonic() - started)
    assert fitted is not None
    scored = fitted.transform(holdout).select(tfm.LABEL, vector_to_array("probability")[1].alias("p")).toPandas()
    spark.stop()
    auc = tfm.average_precision([int(v) for v in scored[tfm.LABEL]], [float(v) for v in scored["p"]])
    return {
        "first_fit_s": fits[0],
        "warm_up_fits_s": fits[:warm_up_fits],
        "fit_s": fits[warm_up_fits:],
        "auc_pr": auc,
        "train_rows": sum(by_label.values()),
        "holdout_rows": len(scored),
        "positives_train": by_label.get(1, 0),
        "reg_param": tfm.DEFAULT_REG_PARAM,
        "max_iter": tfm.DEFAULT_MAX_ITER,
    }


def sklearn(out: Path, names: list[str], repeats: int) -> dict[str, Any]:
    import pandas as pd
    import sklearn as sk
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from spark_jobs import train_fraud_model as tfm

    train = pd.read_parquet(out / "train")
    holdout = pd.read_parquet(out / "holdout")
    labels = train[tfm.LABEL].to_numpy()
    genuine_weight, fraud_weight = tfm.balanced_weights(int((labels == 0).sum()), int((labels == 1).sum()))
    weights = [fraud_weight if v == 1 else genuine_weight for v in labels]
    # MLlib minimises mean weighted log-loss + regParam/2 ||w||^2; scikit-learn C * sum(loss) + 1/2 ||w||^2,
    # so the same regularisation is C = 1 / (regParam * sum of weights).
    c = 1.0 / (tfm.DEFAULT_REG_PARAM * sum(weights))
    fits = []
    model = None
    for _ in range(repeats + 1):
        started = time.monotonic()
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=tfm.DEFAULT_MAX_ITER))
        model.fit(train[names], labels, logisticregression__sample_weight=weights)
        fits.append(time.monotonic() - started)
    assert model is not None
    scores = model.predict_proba(holdout[names])[:, 1]
    auc = tfm.average_precision([int(v) for v in holdout[tfm.LABEL]], [float(v) for v in scores])
    return {"first_fit_s": fits[0], "fit_s": fits[1:], "auc_pr": auc, "version": sk.__version__, "C": c}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ml_spark")
    parser.add_argument("engine", choices=("spark", "sklearn"))
    parser.add_argument("--data", type=Path, required=True, help="the training set's directory (spark writes it)")
    parser.add_argument("--rows", type=int, help="transactions to generate (spark)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm-up-fits", type=int, default=2, help="unmeasured MLlib fits first (spark)")
    args = parser.parse_args(argv)
    if args.engine == "spark":
        if args.rows is None:
            parser.error("spark builds the training set: give --rows")
        data = build_training_set(args.rows, args.seed, args.data)
        (args.data / "feature_names.json").write_text(json.dumps(data["feature_names"]))
        result = {
            "data": data["generated"],
            "features": len(data["feature_names"]),
            "mllib": mllib(args.data, data["feature_names"], args.repeats, args.warm_up_fits),
        }
    else:
        names = json.loads((args.data / "feature_names.json").read_text())
        result = {"sklearn": sklearn(args.data, names, args.repeats)}
    print("BENCH_RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
