import os


def preprocess(i):
    # The corpus lives in the script's run folder: the cache entry's, since cache is true.
    env = i["env"]
    env["MLC_CORPUS_PATH"] = os.path.join(os.getcwd(), "corpus.txt")
    return {"return": 0}


def postprocess(i):
    env = i["env"]
    path = env["MLC_CORPUS_PATH"]
    if not os.path.isfile(path):
        return {"return": 1, "error": f"run.sh wrote no {path}"}
    with open(path) as f:
        env["MLC_CORPUS_WORDS"] = str(sum(len(line.split()) for line in f))
    return {"return": 0}
