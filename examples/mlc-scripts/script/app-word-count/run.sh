#!/bin/bash
# Every word of the corpus with its count, most frequent first (ties by word).
tr -s ' ' '\n' < "${MLC_CORPUS_PATH}" | sort | uniq -c | sort -k1,1nr -k2 > word-counts.txt
