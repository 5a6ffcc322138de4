import json
import time


def preprocess(i):
    # MLC_TMP_* keys stay in this script: neither its caller nor the cache sees them.
    i["env"]["MLC_TMP_WORD_COUNT_START"] = str(time.time())
    return {"return": 0}


def postprocess(i):
    # run.sh wrote "count word" lines, most frequent first; ckg reads ckg-result.json in the
    # run folder as the run's metrics (mlcr ignores it).
    env = i["env"]
    with open("word-counts.txt") as f:
        counts = [line.split() for line in f if line.strip()]
    env["MLC_WORD_COUNT_DISTINCT"] = str(len(counts))
    env["MLC_WORD_COUNT_TOP"] = counts[0][1]
    seconds = time.time() - float(env["MLC_TMP_WORD_COUNT_START"])
    words = int(env["MLC_CORPUS_WORDS"])
    with open("ckg-result.json", "w") as f:
        json.dump({"throughput": {"value": words / seconds, "unit": "1/s"}}, f)
    return {"return": 0}
