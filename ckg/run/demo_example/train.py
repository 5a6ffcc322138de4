"""Train one scikit-learn classifier on the digits set; write accuracy and latency.

Writes ``ckg-result.json`` in the working folder::

    {"accuracy": {"value": 97.8, "unit": "%"}, "latency": {"value": 1.2e-05, "unit": "s"},
     "fit_time": {"value": 0.05, "unit": "s"}}

``latency`` is the prediction time per sample over the held-out set (the best of five
passes, so that a busy machine disturbs it less); ``fit_time`` is the training time.
"""

import argparse
import json
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def make_model(args):
    if args.model == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=2000))
    if args.model == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=args.k, algorithm="brute")
    if args.model == "svm":
        from sklearn.svm import SVC

        return SVC(C=args.C, gamma=0.001)
    if args.model == "tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=args.depth, random_state=args.seed)
    if args.model == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=args.trees, random_state=args.seed)
    if args.model == "bayes":
        from sklearn.naive_bayes import GaussianNB

        return GaussianNB()
    raise SystemExit(f"unknown model {args.model!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=args.seed, stratify=y
    )
    model = make_model(args)
    start = time.perf_counter()
    model.fit(x_train, y_train)
    fit_time = time.perf_counter() - start

    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        predicted = model.predict(x_test)
        best = min(best, time.perf_counter() - start)
    accuracy = 100.0 * float((predicted == y_test).mean())

    result = {
        "accuracy": {"value": round(accuracy, 3), "unit": "%"},
        "latency": {"value": best / len(x_test), "unit": "s"},
        "fit_time": {"value": fit_time, "unit": "s"},
    }
    with open("ckg-result.json", "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    print(f"{args.model}: accuracy {accuracy:.2f}%, {1e6 * best / len(x_test):.1f} us/sample")


if __name__ == "__main__":
    main()
